-- The resource types each account has, so a short 2017-style ResourceType ("Instance") can be
-- expanded to the full ones ("ACS::ECS::Instance") without scanning events; as on SQLite.
CREATE TABLE account_resource_types (
    account bigint NOT NULL,
    rtype   bigint NOT NULL,
    PRIMARY KEY (account, rtype)
);
INSERT INTO account_resource_types (account, rtype)
    SELECT DISTINCT account, rtype FROM event_resources
    ON CONFLICT DO NOTHING;
