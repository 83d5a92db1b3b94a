-- The purpose an identity was collected for (purpose limitation, GDPR Art. 5(1)(b)); empty for
-- identities stored before Steward kept it, which every purpose declaring the category sees.
ALTER TABLE steward.identities ADD COLUMN purpose TEXT;
