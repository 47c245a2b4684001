"""Insights: anomalies found as events arrive, from the stored history, each explained by its events.

``detector`` follows the log and raises insights; ``point`` and ``rates`` hold the rules;
``record`` the record shape; ``lookup`` what the operations and the other doors ask.
docs/insights.md describes every rule and threshold.
"""
