"""Toolsmith's pytest plugin: streams the run's results to the service.

Loaded with `-p toolsmith_report` from the read-only /harness directory, before any test
module (and so before any tool code) is imported. It takes the run's nonce from descriptor 5
(one line, then the descriptor is closed, so code that runs later cannot read it there) and
writes one JSON line per event, prefixed with the nonce, to descriptor 4, a pipe the service
reads while the run goes on. Nothing is written to a file: there is no report to rewrite.
"""

import json
import os


def _channel():
    try:
        with os.fdopen(5, "r") as nonce_pipe:
            nonce = nonce_pipe.readline().strip()
        stream = os.fdopen(4, "w", buffering=1)
    except OSError:
        return None

    def send(kind, **fields):
        stream.write(nonce + " " + json.dumps({"kind": kind, **fields}) + "\n")
        stream.flush()

    return send


_send = _channel()


def _report(kind, **fields):
    if _send is not None:
        _send(kind, **fields)


_STARTED = False


def pytest_collection(session):
    # From here on the run's own modules are imported. Returns None: collection goes on.
    global _STARTED
    _STARTED = True


def pytest_plugin_registered(plugin, manager):
    # Plugins registered during collection come from the run's own files
    # (`pytest_plugins = [...]` in a test module): report them, the verdict will not trust it.
    if _STARTED:
        name = manager.get_name(plugin) or repr(plugin)
        _report("plugin", name=str(name))


def pytest_collection_finish(session):
    _report("collected", count=len(session.items), ids=[item.nodeid for item in session.items])


def pytest_runtest_logreport(report):
    # One line per test: its call, or the setup that kept it from running.
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        message = None
        if report.failed:
            message = str(report.longrepr)[-4000:]
        elif report.skipped and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])
        _report("test", id=report.nodeid, outcome=report.outcome, when=report.when, message=message)
    elif report.when == "teardown" and report.failed:
        _report("teardown", id=report.nodeid, message=str(report.longrepr)[-4000:])


def pytest_collectreport(report):
    if report.failed:
        _report("collect_error", id=report.nodeid, message=str(report.longrepr)[-4000:])


def pytest_sessionfinish(session, exitstatus):
    _report("finished", exitstatus=int(exitstatus))
