"""The library the stage scripts at the repo root share: config schema and loading, models, losses, scoring, reports.

Nothing here is run by a user directly except ``python -m babyllama.synthetic`` (the offline corpus) and
``python -m babyllama.synthetic_tasks`` (the offline fine-tuning tasks). The stage scripts are at the root.
"""
