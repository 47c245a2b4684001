"""The parts of the leaked-key report (``service/access_key_report.py`` assembles them).

``types``: the values a report is made of. ``leak_time``: when the leak is suspected, derived from
the key's history of source networks. ``bursts``: bulk reads and downloads. ``created``: what the key
created (users, AccessKeys, roles, policies) and what those did in turn. ``scan``: one pass over a
principal's events that tallies all of it.
"""
