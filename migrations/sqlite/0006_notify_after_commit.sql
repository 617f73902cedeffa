-- Kept in step with the Postgres migrations (which move the feed's wake-up out of the writing
-- transaction); SQLite never had the trigger.
SELECT 1;
