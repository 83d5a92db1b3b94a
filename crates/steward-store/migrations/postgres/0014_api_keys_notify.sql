-- Every change to an API key is told to every process on this database at once, whoever
-- makes it (`steward apikey revoke`, the console, another server, or SQL by hand): the
-- servers keep verified keys in memory only while nothing has changed.
CREATE FUNCTION steward.api_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('steward_api_keys', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON steward.api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION steward.api_keys_changed();
