-- Trail delivery of Insights (docs/insights.md, "In a trail's files") follows each account's
-- records in the order they were stored: their ref after a cursor.
CREATE INDEX insights_account_ref ON insights (account_id, ref);
