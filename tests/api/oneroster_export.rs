//! Test support: writes a OneRoster CSV export of one school, as a student information system
//! would (1.1 with roles in users.csv, or 1.2 with roles.csv), as a folder or a .zip, and the
//! malformed variants the importer must refuse.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The school's org name, as the plan prints it.
pub(crate) const SCHOOL_NAME: &str = "Lincoln Elementary";

/// One school: students `st1`..`st4`, teachers `te1`, `te2`, administrator `ad1`, classes
/// `math` (te1: st1, st2, st3) and `art` (te2: st3, st4); parent `pa1` names st1 and st2 as
/// children, student st3 names `pa2` as a guardian, relative `re1` (st4) has no address, aide
/// `ai1` is left out.
#[derive(Debug, Clone)]
pub(crate) struct Export {
    /// "1.1" or "1.2".
    pub version: &'static str,
    /// Whether st3 still names pa2.
    pub st3_has_pa2: bool,
    /// Replaces users.csv's text whole (malformed variants).
    pub users_csv: Option<String>,
    /// Files left out.
    pub without: Vec<&'static str>,
    /// People and classes the export no longer lists (with their enrollments).
    pub left: Vec<&'static str>,
    /// People and classes listed with status `tobedeleted`.
    pub marked: Vec<&'static str>,
    /// users.csv's processing mode: "bulk" or "delta".
    pub users_mode: &'static str,
}

impl Default for Export {
    fn default() -> Self {
        Self {
            version: "1.1",
            st3_has_pa2: true,
            users_csv: None,
            without: Vec::new(),
            left: Vec::new(),
            marked: Vec::new(),
            users_mode: "bulk",
        }
    }
}

/// (sourcedId, role, email, given, family, agents)
type Person = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    String,
);

impl Export {
    /// A row's status.
    fn status(&self, id: &str) -> &'static str {
        if self.marked.contains(&id) {
            "tobedeleted"
        } else {
            "active"
        }
    }

    fn people(&self) -> Vec<Person> {
        let mut people = self.everyone();
        people.retain(|(id, ..)| !self.left.contains(id));
        people
    }

    fn everyone(&self) -> Vec<Person> {
        let st3_agents = if self.st3_has_pa2 { "pa2" } else { "" };
        vec![
            (
                "st1",
                "student",
                "st1@lincoln.example",
                "Ada",
                "One",
                String::new(),
            ),
            (
                "st2",
                "student",
                "st2@lincoln.example",
                "Bo",
                "Two",
                String::new(),
            ),
            (
                "st3",
                "student",
                "st3@lincoln.example",
                "Cy",
                "Three",
                st3_agents.into(),
            ),
            (
                "st4",
                "student",
                "st4@lincoln.example",
                "Di",
                "Four",
                "re1".into(),
            ),
            (
                "te1",
                "teacher",
                "te1@lincoln.example",
                "Tess",
                "Math",
                String::new(),
            ),
            (
                "te2",
                "teacher",
                "te2@lincoln.example",
                "Tom",
                "Art",
                String::new(),
            ),
            (
                "ad1",
                "administrator",
                "ad1@lincoln.example",
                "Ann",
                "Office",
                String::new(),
            ),
            (
                "pa1",
                "parent",
                "pa1@family.example",
                "Pat",
                "One",
                "st1,st2".into(),
            ),
            (
                "pa2",
                "guardian",
                "pa2@family.example",
                "Gil",
                "Three",
                String::new(),
            ),
            ("re1", "relative", "", "Ray", "Four", "st4".into()),
            (
                "ai1",
                "aide",
                "ai1@lincoln.example",
                "Al",
                "Aide",
                String::new(),
            ),
        ]
    }

    /// The files' names and text.
    pub(crate) fn files(&self) -> Vec<(&'static str, String)> {
        let mut files = vec![
            (
                "manifest.csv",
                format!(
                    "propertyName,value\nmanifest.version,1.0\noneroster.version,{}\n\
                     file.orgs,bulk\nfile.users,{}\nfile.classes,bulk\nfile.enrollments,bulk\n\
                     source.systemName,Generated SIS\n",
                    self.version, self.users_mode
                ),
            ),
            (
                "orgs.csv",
                format!(
                    "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n\
                     district-1,active,2026-09-01,Lincoln District,district,,\n\
                     school-1,active,2026-09-01,{SCHOOL_NAME},school,,district-1\n"
                ),
            ),
        ];
        let people = self.people();
        let users = match (&self.users_csv, self.version) {
            (Some(text), _) => text.clone(),
            (None, "1.1") => {
                let mut text = String::from(
                    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,\
                     userIds,givenName,familyName,middleName,identifier,email,sms,phone,\
                     agentSourcedIds,grades,password\n",
                );
                for (id, role, email, given, family, agents) in &people {
                    let status = self.status(id);
                    text.push_str(&format!(
                        "{id},{status},2026-09-01,true,school-1,{role},{id},,{given},{family},,,\
                         {email},,,\"{agents}\",,\n"
                    ));
                }
                text
            }
            (None, _) => {
                let mut text = String::from(
                    "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,\
                     familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,\
                     password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,\
                     preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns\n",
                );
                for (id, _, email, given, family, agents) in &people {
                    text.push_str(&format!(
                        "{id},active,2026-09-01,true,{id},,{given},{family},,,{email},,,\
                         \"{agents}\",,,,,,,,school-1,\n"
                    ));
                }
                text
            }
        };
        files.push(("users.csv", users));
        if self.version == "1.2" {
            let mut roles = String::from(
                "sourcedId,status,dateLastModified,userSourcedId,roleType,role,orgSourcedId,\
                 userProfileSourcedId,beginDate,endDate\n",
            );
            for (id, role, ..) in &people {
                roles.push_str(&format!(
                    "r-{id},active,2026-09-01,{id},primary,{role},school-1,,,\n"
                ));
            }
            files.push(("roles.csv", roles));
        }
        let mut classes = String::from(
            "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,\
             location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods\n",
        );
        for (id, title, code) in [("math", "Math 3", "M3"), ("art", "Art 3", "A3")] {
            if !self.left.contains(&id) {
                let status = self.status(id);
                classes.push_str(&format!(
                    "{id},{status},2026-09-01,{title},,c-{id},{code},scheduled,,school-1,term-1,,,\n"
                ));
            }
        }
        files.push(("classes.csv", classes));
        let mut enrollments = String::from(
            "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,\
             primary,beginDate,endDate\n",
        );
        for (n, (class, user, role)) in [
            ("math", "te1", "teacher"),
            ("math", "st1", "student"),
            ("math", "st2", "student"),
            ("math", "st3", "student"),
            ("art", "te2", "teacher"),
            ("art", "st3", "student"),
            ("art", "st4", "student"),
            ("art", "ai1", "aide"),
        ]
        .iter()
        .enumerate()
        {
            // A delta users.csv leaves out users who did not change; their enrollments stay.
            let user_gone = self.left.contains(user) && self.users_mode == "bulk";
            if self.left.contains(class)
                || self.marked.contains(class)
                || self.marked.contains(user)
                || user_gone
            {
                continue;
            }
            enrollments.push_str(&format!(
                "e{n},active,2026-09-01,{class},school-1,{user},{role},false,,\n"
            ));
        }
        files.push(("enrollments.csv", enrollments));
        files.retain(|(name, _)| !self.without.contains(name));
        files
    }

    /// Writes the export as a folder under `dir`.
    pub(crate) fn folder(&self, dir: &Path, name: &str) -> PathBuf {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for (file, text) in self.files() {
            std::fs::write(folder.join(file), text).unwrap();
        }
        folder
    }

    /// Writes the export as a .zip under `dir`, its files in a folder as many systems do.
    pub(crate) fn zip(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (file, text) in self.files() {
            zip.start_file(format!("export/{file}"), options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        path
    }
}
