"""Presentation: what the service layer computes, drawn as HTML, SVG, rich tables, JSON and CSV.

Imports ``service`` and ``model`` only (never ``api``, ``cli`` or ``storage``), and ``service``
never imports it, so a renderer can change without touching the logic it draws.
"""
