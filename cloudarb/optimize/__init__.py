"""The optimization feature: requests -> optimize jobs -> stored solutions; saved policies that
re-optimize on a schedule. Submit (``submit``), job bodies (``jobs``, ``policy_runs``), the problem
builder (``problem``), storage (``store``, ``policy_store``), the policies' schedule slots
(``schedule``) and read models (``views``)."""
