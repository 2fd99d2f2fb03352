"""One client process of tests/nothing_lost_e2e_test.py.

    nothing_lost_client.py SOCKET RUN_FILE LEDGER NAME SECONDS

Until SECONDS have passed, keeps a few ``hostile_jobs.record_once`` jobs in
flight, each with a unique id ``NAME-n``, reconnecting whenever the daemon
goes away. The LEDGER gets one line per event, written before it is acted
on: ``submit ID``, then one of ``ok ID``, ``error ID``, ``lost ID`` or
``hung ID`` (no answer within the bound: a bug), and ``done`` at the end.
"""

import concurrent.futures
import random
import sys
import time

import extrainterpreters
import hostile_jobs

IN_FLIGHT = 4
ANSWER_BOUND = 30.0  # a job here takes milliseconds; past this it is a hang


def main(socket_path, run_file, ledger_path, name, seconds):
    deadline = time.monotonic() + float(seconds)
    rng = random.Random(name)
    ledger = open(ledger_path, "a", buffering=1)
    client = None
    pending = {}  # future -> job id
    n = 0

    def settle(future, job_id):
        try:
            value = future.result(0)
            ledger.write(("ok " if value[0] == job_id else "wrong ") + job_id + "\n")
        except extrainterpreters.DaemonConnectionError:
            ledger.write(f"lost {job_id}\n")
        except Exception:  # a typed error from the daemon (shutting_down...)
            ledger.write(f"error {job_id}\n")

    while time.monotonic() < deadline or pending:
        if client is None or client.closed:
            if client is not None:
                client.close()
            client = None
            try:
                client = extrainterpreters.Client(socket_path, connect_timeout=5)
            except (extrainterpreters.ExtraInterpretersError, OSError, TimeoutError):
                if not pending:
                    time.sleep(0.05)
        while client is not None and len(pending) < IN_FLIGHT and time.monotonic() < deadline:
            job_id = f"{name}-{n}"
            n += 1
            ledger.write(f"submit {job_id}\n")
            try:
                future = client.submit(hostile_jobs.record_once, run_file, job_id,
                                       rng.choice((0, 100, 200_000)))
            except extrainterpreters.DaemonConnectionError:
                ledger.write(f"lost {job_id}\n")
                break
            pending[future] = job_id
        if not pending:
            continue
        done, _ = concurrent.futures.wait(pending, timeout=ANSWER_BOUND,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        if not done:
            for job_id in pending.values():
                ledger.write(f"hung {job_id}\n")
            break
        for future in done:
            settle(future, pending.pop(future))
    if client is not None:
        client.close()
    ledger.write("done\n")
    ledger.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
