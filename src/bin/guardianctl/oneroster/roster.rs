//! A OneRoster 1.1 or 1.2 export made into what the service keeps: the directory (students,
//! teachers and administrators, classes with their teachers and students) and each student's
//! guardians (the `parent`, `guardian` and `relative` users tied to them by `agentSourcedIds`,
//! from either side, that have an address). Every bad cell is reported, none is guessed.

use super::export::{Export, Table, cell, list};
use guardian_service::domain::{CourseId, Email, UserId};
use guardian_service::proto::{Course, User, UserRole};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Complaints listed before giving up (a wrong file gives one per line).
const MAX_ERRORS: usize = 20;

/// What an export holds, ready to send.
pub(crate) struct Roster {
    /// The OneRoster version the manifest names.
    pub(crate) version: String,
    /// Users to upsert: students, teachers, administrators.
    pub(crate) users: Vec<User>,
    /// Classes to upsert.
    pub(crate) courses: Vec<Course>,
    /// Every student of the export with their guardians' addresses (maybe none), by id.
    pub(crate) guardians: BTreeMap<String, BTreeSet<String>>,
    /// The school (org name) of each user and class, for counts per school.
    pub(crate) school_of: HashMap<String, String>,
    /// What was left out, and why (users without an address, aides...).
    pub(crate) notes: Vec<String>,
    /// Whether users.csv is a delta (only changed rows): then only the users it marks
    /// `tobedeleted` leave, where a bulk file's absence of a user means they left.
    pub(crate) users_delta: bool,
    /// Users the export marks `tobedeleted`.
    pub(crate) users_deleted: Vec<String>,
    /// Classes the export marks `tobedeleted`.
    pub(crate) classes_deleted: Vec<String>,
}

/// A user's part in the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Directory(UserRole),
    Guardian,
    /// Aides, proctors: not the service's business.
    Other,
}

fn part_of(role: &str) -> Option<Part> {
    Some(match role.to_ascii_lowercase().as_str() {
        "student" => Part::Directory(UserRole::Student),
        "teacher" => Part::Directory(UserRole::Teacher),
        "administrator"
        | "districtadministrator"
        | "siteadministrator"
        | "systemadministrator"
        | "principal" => Part::Directory(UserRole::Admin),
        "parent" | "guardian" | "relative" => Part::Guardian,
        "aide" | "proctor" | "counselor" | "extstaff" | "vendor" => Part::Other,
        _ => return None,
    })
}

/// Collects complaints up to [`MAX_ERRORS`].
#[derive(Default)]
struct Complaints(Vec<String>);

impl Complaints {
    fn add(&mut self, why: String) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(why);
        }
    }
}

/// One user row as read.
struct Person {
    id: String,
    part: Part,
    email: Option<String>,
    name: String,
    org: Option<String>,
    agents: Vec<String>,
}

/// Reads the export. `Err` lists every problem found (up to twenty), each with its file, line
/// and column; nothing is sent when there is one.
pub(crate) fn read(
    export: &Export,
    domain: &str,
    teachers_verified: bool,
) -> Result<Roster, Vec<String>> {
    let one = |e: String| vec![e];
    let (version, users_delta) = manifest_version(export).map_err(one)?;
    let orgs = export.table("orgs.csv").map_err(one)?;
    let users = export.table("users.csv").map_err(one)?;
    let classes = export.table("classes.csv").map_err(one)?;
    let enrollments = export.table("enrollments.csv").map_err(one)?;
    let mut complaints = Complaints::default();
    let schools = read_orgs(&orgs).map_err(one)?;
    let roles = if users.optional_column("role").is_none() {
        if !export.has("roles.csv") {
            return Err(one(
                "users.csv has no role column and roles.csv is missing (OneRoster 1.2 keeps \
                 roles there)"
                    .into(),
            ));
        }
        read_roles(&export.table("roles.csv").map_err(one)?, &mut complaints).map_err(one)?
    } else {
        HashMap::new()
    };
    let (people, users_deleted) = read_users(&users, &roles, &mut complaints).map_err(one)?;
    let by_id: HashMap<&str, &Person> = people.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut roster = Roster {
        version,
        users: Vec::new(),
        courses: Vec::new(),
        guardians: BTreeMap::new(),
        school_of: HashMap::new(),
        notes: Vec::new(),
        users_delta,
        users_deleted,
        classes_deleted: Vec::new(),
    };
    let school_name = |org: Option<&String>| {
        org.and_then(|o| schools.get(o))
            .cloned()
            .unwrap_or_else(|| "(no school)".into())
    };
    let mut no_address = 0;
    let mut others = 0;
    for person in &people {
        roster
            .school_of
            .insert(person.id.clone(), school_name(person.org.as_ref()));
        match person.part {
            Part::Directory(role) => {
                let Some(email) = &person.email else {
                    no_address += 1;
                    continue;
                };
                roster.users.push(User {
                    user_id: person.id.clone(),
                    domain: domain.to_owned(),
                    email: email.clone(),
                    role: role as i32,
                    verified_teacher: teachers_verified && role == UserRole::Teacher,
                    display_name: person.name.clone(),
                    locale: String::new(),
                });
                if role == UserRole::Student {
                    roster.guardians.insert(person.id.clone(), BTreeSet::new());
                }
            }
            Part::Guardian if person.email.is_none() => no_address += 1,
            Part::Guardian => {}
            Part::Other => others += 1,
        }
    }
    // A tie counts from either side: a student naming a parent, or a parent naming a child.
    for person in &people {
        for agent in &person.agents {
            let Some(other) = by_id.get(agent.as_str()) else {
                continue;
            };
            let (student, guardian) = match (person.part, other.part) {
                (Part::Directory(UserRole::Student), Part::Guardian) => (person, *other),
                (Part::Guardian, Part::Directory(UserRole::Student)) => (*other, person),
                _ => continue,
            };
            if let (Some(wards), Some(address)) =
                (roster.guardians.get_mut(&student.id), &guardian.email)
            {
                wards.insert(address.clone());
            }
        }
    }
    if no_address > 0 {
        roster.notes.push(format!(
            "{no_address} users without an email address left out (the service mails people)"
        ));
    }
    if others > 0 {
        roster
            .notes
            .push(format!("{others} aides, proctors and other staff left out"));
    }
    let known = Known {
        people: &by_id,
        users_delta,
    };
    (roster.courses, roster.classes_deleted) = read_classes(
        &classes,
        &enrollments,
        &known,
        domain,
        &mut complaints,
        &mut roster.school_of,
        &schools,
    )
    .map_err(one)?;
    if complaints.0.is_empty() {
        Ok(roster)
    } else {
        Err(complaints.0)
    }
}

/// The OneRoster version the manifest names, and whether users.csv is a delta.
fn manifest_version(export: &Export) -> Result<(String, bool), String> {
    let manifest = export.table("manifest.csv")?;
    let name = manifest.column("propertyName")?;
    let value = manifest.column("value")?;
    let mut version = None;
    let mut users_delta = false;
    for (line, row) in &manifest.rows {
        let property = cell(row, name);
        let said = cell(row, value);
        if property == "oneroster.version" {
            if !matches!(said, "1.1" | "1.2") {
                return Err(manifest.error(
                    *line,
                    value,
                    format!("OneRoster {said} is not read here (1.1 and 1.2 are)"),
                ));
            }
            version = Some(said.to_owned());
        }
        if let Some(file) = property.strip_prefix("file.")
            && said.eq_ignore_ascii_case("absent")
            && ["orgs", "users", "classes", "enrollments"].contains(&file)
        {
            return Err(manifest.error(
                *line,
                value,
                format!("the export says {file}.csv is absent; the import needs it"),
            ));
        }
        if matches!(property, "file.classes" | "file.enrollments")
            && said.eq_ignore_ascii_case("delta")
        {
            return Err(manifest.error(
                *line,
                value,
                format!(
                    "{property} is a delta; classes and enrollments are read whole (bulk), as \
                     each class is written with all its members"
                ),
            ));
        }
        if property == "file.users" {
            users_delta = match said.to_ascii_lowercase().as_str() {
                "bulk" => false,
                "delta" => true,
                _ => {
                    return Err(manifest.error(
                        *line,
                        value,
                        format!("{said:?} is not a processing mode (bulk or delta)"),
                    ));
                }
            };
        }
    }
    let version = version.ok_or("manifest.csv names no oneroster.version")?;
    Ok((version, users_delta))
}

fn read_orgs(orgs: &Table) -> Result<HashMap<String, String>, String> {
    let id = orgs.column("sourcedId")?;
    let name = orgs.column("name")?;
    Ok(orgs
        .rows
        .iter()
        .map(|(_, row)| (cell(row, id).to_owned(), cell(row, name).to_owned()))
        .collect())
}

/// OneRoster 1.2: each user's role (the primary one, else the first) and org.
fn read_roles(
    roles: &Table,
    complaints: &mut Complaints,
) -> Result<HashMap<String, (Part, String)>, String> {
    let user = roles.column("userSourcedId")?;
    let role = roles.column("role")?;
    let org = roles.column("orgSourcedId")?;
    let kind = roles.optional_column("roleType");
    let mut found: HashMap<String, (Part, String)> = HashMap::new();
    for (line, row) in &roles.rows {
        let Some(part) = part_of(cell(row, role)) else {
            complaints.add(roles.error(
                *line,
                role,
                format!("{:?} is not a OneRoster role", cell(row, role)),
            ));
            continue;
        };
        let primary = kind.is_some_and(|k| cell(row, k).eq_ignore_ascii_case("primary"));
        let id = cell(row, user).to_owned();
        if primary || !found.contains_key(&id) {
            found.insert(id, (part, cell(row, org).to_owned()));
        }
    }
    Ok(found)
}

/// The users to keep, and the ids of those marked `tobedeleted`.
fn read_users(
    users: &Table,
    roles: &HashMap<String, (Part, String)>,
    complaints: &mut Complaints,
) -> Result<(Vec<Person>, Vec<String>), String> {
    let id = users.column("sourcedId")?;
    let email = users.column("email")?;
    let given = users.column("givenName")?;
    let family = users.column("familyName")?;
    let status = users.optional_column("status");
    let role = users.optional_column("role");
    let orgs = users
        .optional_column("orgSourcedIds")
        .or_else(|| users.optional_column("primaryOrgSourcedId"));
    let agents = users.optional_column("agentSourcedIds");
    let username = users.optional_column("username");
    let mut people = Vec::new();
    let mut deleted = Vec::new();
    for (line, row) in &users.rows {
        let raw_id = cell(row, id);
        if UserId::parse(raw_id).is_err() {
            complaints.add(users.error(
                *line,
                id,
                format!("{raw_id:?} is not a usable id (1-128 letters, digits and -_.:)"),
            ));
            continue;
        }
        if status.is_some_and(|s| cell(row, s).eq_ignore_ascii_case("tobedeleted")) {
            deleted.push(raw_id.to_owned());
            continue;
        }
        let (part, org) = match role {
            Some(column) => match part_of(cell(row, column)) {
                Some(part) => (part, list(row, orgs).into_iter().next()),
                None => {
                    complaints.add(users.error(
                        *line,
                        column,
                        format!("{:?} is not a OneRoster role", cell(row, column)),
                    ));
                    continue;
                }
            },
            None => match roles.get(raw_id) {
                Some((part, org)) => (*part, Some(org.clone())),
                None => {
                    complaints.add(users.error(*line, id, "roles.csv gives this user no role"));
                    continue;
                }
            },
        };
        let given_address = cell(row, email);
        let address = if given_address.is_empty() {
            // Some systems leave email empty and put the address in the username.
            username
                .map(|u| cell(row, u))
                .filter(|u| u.contains('@') && Email::parse(u).is_ok())
                .map(str::to_owned)
        } else if Email::parse(given_address).is_ok() {
            Some(given_address.to_owned())
        } else {
            complaints.add(users.error(
                *line,
                email,
                format!("{given_address:?} is not an email address"),
            ));
            continue;
        };
        let name = format!("{} {}", cell(row, given), cell(row, family))
            .trim()
            .to_owned();
        people.push(Person {
            id: raw_id.to_owned(),
            part,
            email: address,
            name,
            org,
            agents: list(row, agents),
        });
    }
    Ok((people, deleted))
}

/// The users an enrollment may name: those of users.csv, and (when it is a delta) any other
/// the directory holds already.
struct Known<'a> {
    people: &'a HashMap<&'a str, &'a Person>,
    users_delta: bool,
}

fn read_classes(
    classes: &Table,
    enrollments: &Table,
    known: &Known<'_>,
    domain: &str,
    complaints: &mut Complaints,
    school_of: &mut HashMap<String, String>,
    schools: &HashMap<String, String>,
) -> Result<(Vec<Course>, Vec<String>), String> {
    let id = classes.column("sourcedId")?;
    let school = classes.column("schoolSourcedId")?;
    let status = classes.optional_column("status");
    let mut courses: BTreeMap<String, Course> = BTreeMap::new();
    let mut deleted = Vec::new();
    for (line, row) in &classes.rows {
        let raw = cell(row, id);
        if CourseId::parse(raw).is_err() {
            complaints.add(classes.error(*line, id, format!("{raw:?} is not a usable class id")));
            continue;
        }
        if status.is_some_and(|s| cell(row, s).eq_ignore_ascii_case("tobedeleted")) {
            deleted.push(raw.to_owned());
            continue;
        }
        let name = schools
            .get(cell(row, school))
            .cloned()
            .unwrap_or_else(|| "(no school)".into());
        school_of.insert(raw.to_owned(), name);
        courses.insert(
            raw.to_owned(),
            Course {
                course_id: raw.to_owned(),
                domain: domain.to_owned(),
                teacher_ids: Vec::new(),
                student_ids: Vec::new(),
            },
        );
    }
    let class = enrollments.column("classSourcedId")?;
    let user = enrollments.column("userSourcedId")?;
    let role = enrollments.column("role")?;
    let status = enrollments.optional_column("status");
    for (line, row) in &enrollments.rows {
        if status.is_some_and(|s| cell(row, s).eq_ignore_ascii_case("tobedeleted")) {
            continue;
        }
        let Some(course) = courses.get_mut(cell(row, class)) else {
            complaints.add(enrollments.error(*line, class, "no such class in classes.csv"));
            continue;
        };
        let role_said = cell(row, role).to_ascii_lowercase();
        let Some(person) = known.people.get(cell(row, user)) else {
            if known.users_delta && UserId::parse(cell(row, user)).is_ok() {
                // A delta lists only changed users: the others are in the directory already,
                // in the part their enrollment says.
                match role_said.as_str() {
                    "student" => course.student_ids.push(cell(row, user).to_owned()),
                    "teacher" => course.teacher_ids.push(cell(row, user).to_owned()),
                    _ => {}
                }
            } else {
                complaints.add(enrollments.error(*line, user, "no such user in users.csv"));
            }
            continue;
        };
        if person.email.is_none() {
            continue;
        }
        let member = person.id.clone();
        match role_said.as_str() {
            "student" if person.part == Part::Directory(UserRole::Student) => {
                course.student_ids.push(member)
            }
            "teacher" if person.part == Part::Directory(UserRole::Teacher) => {
                course.teacher_ids.push(member)
            }
            "student" | "teacher" => complaints.add(enrollments.error(
                *line,
                role,
                format!("users.csv gives {} another role", person.id),
            )),
            // Aides, guardians in a class...: not the directory's business.
            _ => {}
        }
    }
    let courses = courses
        .into_values()
        .map(|mut c| {
            c.teacher_ids.sort();
            c.teacher_ids.dedup();
            c.student_ids.sort();
            c.student_ids.dedup();
            c
        })
        .collect();
    Ok((courses, deleted))
}
