"""The write paths of Flowyard. Views, commands, actors and the admin call these, nothing lower."""

from engine.services.workflows import workflow_publish

__all__ = ["workflow_publish"]
