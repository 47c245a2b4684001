-- Reads across every service break their last ties on the service, so the index that serves them
-- must end with it for keyset pages to be complete.
DROP INDEX key_usage_any_service;
CREATE INDEX key_usage_any_service ON key_usage (account, access_key, kind, last_used DESC, item, item_type, service);
