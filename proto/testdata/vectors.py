"""The golden frames, one call a vector: every request and reply of
proto/PROTOCOL.md, edge cases, and frames a decoder must refuse.
"""

import hashlib
import json

from frame_bytes import (BINARY_PAYLOAD, DEFAULT_LIMITS, DEFINE_PAYLOAD,
                         DIGEST, ITEM_PAYLOAD, RAISED_PAYLOAD, RESULT_PAYLOAD,
                         RUN_PAYLOAD, SMALL_LIMITS, VECTORS, bad, bad_header,
                         canonical, frame, good, header_padded_to,
                         large_payload, need_more, prefix, vector)


def requests():
    good("request_hello", "hello with every option",
         {"type": "hello", "id": 1, "protocol": 1, "fds": True,
          "regions": True,
          "client": "extrainterpreters-python/0.1.0 python/3.13.0"})
    good("request_hello_minimal", "hello with only what it must have",
         {"type": "hello", "id": 1, "protocol": 1})
    good("request_run", "run on the pool: a pickled (fn, args, kwargs)",
         {"type": "run", "id": 7}, RUN_PAYLOAD)
    good("request_run_every_option",
         "run with lease, timeout, output, uses, fd, oob, region, free_region",
         {"type": "run", "id": 8, "lease": 3, "timeout": 2.5, "output": True,
          "uses": [DIGEST, hashlib.sha256(b"other").hexdigest()],
          "fd": True, "oob": [1048576, 2097152], "region": True,
          "free_region": True}, RUN_PAYLOAD)
    good("request_run_process_lane", "run in the process lane, no rerun",
         {"type": "run", "id": 10, "lane": "process", "rerun": False,
          "wait": False},
         RUN_PAYLOAD)
    good("request_run_integer_timeout", "run with a whole-second timeout",
         {"type": "run", "id": 9, "timeout": 30}, RUN_PAYLOAD)
    good("request_define", "define: a function by value, named by its SHA-256",
         {"type": "define", "id": 6,
          "digest": hashlib.sha256(DEFINE_PAYLOAD).hexdigest()},
         DEFINE_PAYLOAD)
    good("request_cancel", "cancel job 7",
         {"type": "cancel", "id": 8, "job": 7})
    good("request_lease", "lease", {"type": "lease", "id": 2})
    good("request_lease_process", "lease a worker process",
         {"type": "lease", "id": 2, "lane": "process"})
    good("request_release", "release lease 5",
         {"type": "release", "id": 3, "lease": 5})
    good("request_status", "status", {"type": "status", "id": 4})
    good("request_ping", "ping", {"type": "ping", "id": 5})
    good("request_queue_create", "queue_create, named",
         {"type": "queue_create", "id": 10, "name": "results", "maxsize": 100})
    good("request_queue_create_anonymous", "queue_create, anonymous",
         {"type": "queue_create", "id": 11, "name": None, "maxsize": 0})
    good("request_queue_open", "queue_open",
         {"type": "queue_open", "id": 12, "name": "results"})
    good("request_queue_put", "queue_put that may wait forever, with its item",
         {"type": "queue_put", "id": 13, "queue": 3, "block": True,
          "timeout": None}, ITEM_PAYLOAD)
    good("request_queue_put_front",
         "queue_put front:true, giving an item back",
         {"type": "queue_put", "id": 14, "queue": 3, "front": True,
          "block": False, "timeout": 0}, ITEM_PAYLOAD)
    good("request_queue_get", "queue_get waiting 2.5 s",
         {"type": "queue_get", "id": 15, "queue": 3, "block": True,
          "timeout": 2.5})
    good("request_queue_get_nonblocking", "queue_get that must not wait",
         {"type": "queue_get", "id": 16, "queue": 3, "block": False})
    good("request_queue_delete", "queue_delete",
         {"type": "queue_delete", "id": 17, "queue": 3})
    good("request_queue_info", "queue_info",
         {"type": "queue_info", "id": 18, "queue": 3})
    good("request_queue_cancel", "queue_cancel of waiting request 15",
         {"type": "queue_cancel", "id": 19, "request": 15})


def replies():
    daemon = {"sender": "daemon"}
    good("reply_hello", "hello reply with every limit",
         {"type": "hello", "id": 1, "protocol": 1, "daemon_version": "0.1.0",
          "pid": 4242, "python": "3.13.0", "python_hexversion": 51183856,
          "workers": 2, "lanes": ["interpreter", "process"],
          "process_workers": 1,
          "limits": {"max_frame_bytes": 268435456, "max_header_bytes": 65536,
                     "buffer_size": 10485760, "max_interpreters": 8,
                     "max_definitions": 4096, "cancel_grace_seconds": 5.0,
                     "max_connections": 1024,
                     "max_jobs_per_connection": 10000,
                     "max_queue_depth": 100000, "frame_deadline_seconds": 30.0,
                     "idle_timeout_seconds": 0.0,
                     "max_output_buffer": 67108864, "max_queues": 1024,
                     "max_queue_items": 100000,
                     "max_queue_bytes": 268435456,
                     "max_process_workers": 2}}, **daemon)
    good("reply_result_ok", "result ok, with the pickled return value",
         {"type": "result", "id": 7, "status": "ok"}, RESULT_PAYLOAD, **daemon)
    good("reply_result_ok_out_of_band",
         "result ok in the result region, oob buffers, oob_done",
         {"type": "result", "id": 8, "status": "ok", "fd": True,
          "oob": [1048576], "region": True, "oob_done": True},
         RESULT_PAYLOAD, **daemon)
    traceback = ("Traceback (most recent call last):\n"
                 "  File \"<job>\", line 1\n"
                 "ZeroDivisionError: division by zero\n")
    raised = {"type": "result", "id": 7, "status": "raised",
              "exception": {"type": "builtins.ZeroDivisionError",
                            "message": "division by zero",
                            "traceback": traceback}}
    good("reply_result_raised", "result raised, with the pickled exception",
         raised, RAISED_PAYLOAD, **daemon)
    good("reply_result_raised_unpicklable",
         "result raised, the exception did not pickle: empty payload",
         dict(raised, id=9), **daemon)
    good("reply_error_with_exception", "error job_load_failed, from Python",
         {"type": "error", "id": 7, "code": "job_load_failed", "fatal": False,
          "message": "cannot unpickle job 7 in interpreter 4: No module named "
                     "'nosuchmod' (ModuleNotFoundError)",
          "exception": {"type": "builtins.ModuleNotFoundError",
                        "message": "No module named 'nosuchmod'",
                        "traceback": "..."}}, **daemon)
    good("reply_error", "error unknown_lease, no exception",
         {"type": "error", "id": 9, "code": "unknown_lease", "fatal": False,
          "message": "lease 5 is not held by this connection"}, **daemon)
    good("reply_error_null_id",
         "fatal busy error about the connection: id null",
         {"type": "error", "id": None, "code": "busy", "fatal": True,
          "message": "1024 connections are open (max_connections)"}, **daemon)
    good("reply_error_queue_empty", "error queue_empty after a get's timeout",
         {"type": "error", "id": 15, "code": "queue_empty", "fatal": False,
          "message": "queue 3 stayed empty for 2.5 s"}, **daemon)
    good("reply_output", "output on stdout",
         {"type": "output", "id": 7, "stream": "stdout",
          "data": "progress 40%\n"}, **daemon)
    good("reply_output_control_characters",
         "output on stderr with escapes: tab, CR, ESC, NUL, DEL",
         {"type": "output", "id": 7, "stream": "stderr",
          "data": "\x1b[31mred\x1b[0m\tcol\r\n\x00\x7f\"q\" \\ /\n"}, **daemon)
    good("reply_define", "define reply",
         {"type": "define", "id": 6,
          "digest": hashlib.sha256(DEFINE_PAYLOAD).hexdigest()}, **daemon)
    vector("reply_cancel_states",
           "three cancel replies: queued, running, unknown",
           [frame({"type": "cancel", "id": 8 + i, "job": 7 + i, "state": s})
            for i, s in enumerate(["queued", "running", "unknown"])], **daemon)
    good("reply_lease", "lease reply",
         {"type": "lease", "id": 2, "lease": 5, "lane": "interpreter",
          "interpreter": 9}, **daemon)
    good("reply_lease_process", "lease reply for a worker process",
         {"type": "lease", "id": 2, "lease": 1099511627776, "lane": "process",
          "interpreter": -1, "worker": 3, "pid": 4711}, **daemon)
    good("reply_error_worker_crashed", "error worker_crashed",
         {"type": "error", "id": 17, "code": "worker_crashed", "fatal": False,
          "message": "process worker 2 (pid 4711) died with SIGSEGV while "
                     "running job 17; a fresh worker takes its place"},
         **daemon)
    good("reply_release", "release reply",
         {"type": "release", "id": 3, "lease": 5}, **daemon)
    good("reply_status", "status reply with every key",
         {"type": "status", "id": 4, "status": {
             "daemon_version": "0.1.0", "protocol": 1, "pid": 4242,
             "python": "3.13.0", "socket": "/run/extrainterpreters/ei.sock",
             "state": "ready", "uptime_seconds": 12.5,
             "workers": [
                 {"id": 1, "interpreter": 2, "kind": "pool", "lease": None,
                  "state": "busy", "jobs_done": 10,
                  "current_job_age_seconds": 0.25},
                 {"id": 2, "interpreter": 3, "kind": "lease", "lease": 5,
                  "state": "idle", "jobs_done": 0,
                  "current_job_age_seconds": None}],
             "leases": {"active": 1, "max": 8}, "queue_depth": 0,
             "connections": 1,
             "queues": {"count": 1, "waiters": 0, "list": [
                 {"id": 3, "name": "results", "owner": None, "size": 2,
                  "bytes": 64, "maxsize": 100, "waiters": 0}]},
             "totals": {"submitted": 11, "completed": 9, "failed": 1,
                        "dropped": 0, "cancelled": 1, "timeouts": 0},
             "retired": {"stuck": 0, "recycled": 0, "threads": 0},
             "process_workers": [
                 {"id": 3, "pid": 4711, "kind": "pool", "lease": None,
                  "state": "idle", "jobs_done": 2,
                  "current_job_age_seconds": None, "rss_bytes": 31457280}],
             "lanes": {"interpreter": {"jobs": 9},
                       "process": {"jobs": 2, "crashed": 0,
                                   "routed": {"module": 1, "remembered": 0,
                                              "load_refused": 0,
                                              "run_refused": 1}}},
             "latency_us": {"p50": None, "p99": None, "samples": 0}}},
         **daemon)
    good("reply_ping", "ping reply", {"type": "ping", "id": 5}, **daemon)
    good("reply_queue_create", "queue_create reply",
         {"type": "queue_create", "id": 10, "queue": 3}, **daemon)
    good("reply_queue_open", "queue_open reply",
         {"type": "queue_open", "id": 12, "queue": 3, "maxsize": 100},
         **daemon)
    good("reply_queue_put", "queue_put reply: the item is stored",
         {"type": "queue_put", "id": 13}, **daemon)
    good("reply_queue_get", "queue_get reply with the item",
         {"type": "queue_get", "id": 15}, ITEM_PAYLOAD, **daemon)
    good("reply_queue_delete", "queue_delete reply",
         {"type": "queue_delete", "id": 17}, **daemon)
    good("reply_queue_info", "queue_info reply",
         {"type": "queue_info", "id": 18, "queue": 3, "name": None, "size": 2,
          "bytes": 64, "maxsize": 0, "waiters": 1, "getters": 1,
          "putters": 0}, **daemon)
    good("reply_queue_cancel", "queue_cancel reply: withdrawn",
         {"type": "queue_cancel", "id": 19, "request": 15,
          "state": "withdrawn"}, **daemon)
    good("reply_hello_sys_path", "hello reply with the daemon's sys.path",
         {"type": "hello", "id": 1, "protocol": 1, "daemon_version": "0.1.0",
          "pid": 4242, "python": "3.13.0", "python_hexversion": 51183856,
          "workers": 2,
          "sys_path": ["/srv/my app", "/home/zo\u00eb/lib",
                       "/usr/lib/python313.zip", "/usr/lib/python3.13",
                       "/usr/lib/python3.13/lib-dynload"],
          "limits": DEFAULT_LIMITS}, **daemon)


def _nested(levels):
    """``levels`` arrays, one inside the other."""
    value = []
    for _ in range(levels - 1):
        value = [value]
    return value


def edges():
    good("edge_minimal_header", "the least a header can be: id 0, empty type",
         {"type": "", "id": 0})
    good("edge_max_id", "id 2^53-1, the largest",
         {"type": "ping", "id": 2**53 - 1})
    good("edge_nested_at_limit", "arrays nested to the limit, 256 deep with "
         "the header, and brackets in a string that do not count",
         {"type": "ping", "id": 1, "s": "[[[[{{{{" * 40,
          "v": _nested(255)})
    good("edge_header_at_limit", "a header of exactly max_header_bytes",
         header_padded_to(DEFAULT_LIMITS["max_header_bytes"],
                          {"type": "ping", "id": 1}))
    small_header = header_padded_to(SMALL_LIMITS["max_header_bytes"],
                                    {"type": "run", "id": 1})
    at_limit = (SMALL_LIMITS["max_frame_bytes"] - 16
                - SMALL_LIMITS["max_header_bytes"])
    good("edge_frame_at_small_limits",
         "header and frame exactly at announced limits of 128 and 512 bytes",
         small_header, large_payload(at_limit), limits=SMALL_LIMITS)
    good("edge_unicode",
         "UTF-8 in names and values: 2, 3 and 4-byte characters",
         {"type": "queue_create", "id": 20, "maxsize": 0,
          "name": "données/队列/\U0001f40d",
          "note": "e\u0301 \u2028 \uffff"})
    unicode_escaped = {"type": "queue_open", "id": 21,
                       "name": "données/队列/\U0001f40d"}
    good("edge_unicode_escaped",
         "the same text as \\u escapes, a surrogate pair included",
         unicode_escaped, raw=json.dumps(unicode_escaped).encode("ascii"),
         reencode="equivalent")
    loose = {"type": "run", "id": 22, "timeout": 1.5, "uses": []}
    good("edge_whitespace_and_key_order",
         "spaces, newlines and keys out of order, as another client may write",
         loose, RUN_PAYLOAD,
         raw=b' {\n  "uses" : [ ],\r\n\t"type": "run", "timeout": 1.5,\n'
             b'  "id": 22\n} \n', reencode="equivalent")
    good("edge_minus_zero_id", "an id of -0 is 0 (PROTOCOL.md, Frames)",
         {"type": "ping", "id": 0}, raw=b'{"id":-0,"type":"ping"}',
         reencode="equivalent")
    good("edge_unknown_fields",
         "fields no version defines, of every JSON kind",
         {"type": "ping", "id": 23, "future": {"a": [1, -2, 0.5, None, True,
                                                      False, "s", {}, []]},
          "u64": 18446744073709551615, "i64": -9223372036854775808,
          "floats": [1e-07, 1e+300, -2.5, 1.7976931348623157e+308, 0.1]})
    good("edge_deep_nesting", "a field nested 100 deep",
         {"type": "ping", "id": 24, "deep": json.loads("[" * 100 + "]" * 100)})
    good("edge_binary_payload",
         "every byte value in the payload, and a whole frame inside it",
         {"type": "result", "id": 25, "status": "ok"}, BINARY_PAYLOAD,
         sender="daemon")
    good("edge_large_payload", "a 100 KiB payload, past any 64 KiB read",
         {"type": "queue_put", "id": 26, "queue": 3},
         large_payload(100 * 1024))
    vector("stream_three_frames",
           "hello, run with a payload, ping: one stream",
           [frame({"type": "hello", "id": 1, "protocol": 1}),
            frame({"type": "run", "id": 2}, RUN_PAYLOAD),
            frame({"type": "ping", "id": 3})])
    header = canonical({"type": "run", "id": 27})
    limit = DEFAULT_LIMITS["max_frame_bytes"] - 16 - len(header)
    need_more("edge_payload_length_at_limit",
              "a payload announced at max_frame_bytes exactly, its first "
              "bytes sent: the decoder accepts the prefix and waits",
              prefix(len(header), limit) + header + RUN_PAYLOAD)
    ping = frame({"type": "ping", "id": 1})
    run = frame({"type": "run", "id": 2}, RUN_PAYLOAD)["bytes"]
    need_more("truncated_prefix", "10 bytes of a prefix", run[:10])
    need_more("truncated_header", "the prefix and half the header", run[:24])
    need_more("truncated_payload", "a run frame missing its last byte",
              run[:-1])
    need_more("stream_frame_then_truncated", "a ping, then a cut run frame",
              run[:-5], before=[ping])


def bad_prefixes():
    ok = canonical({"type": "ping", "id": 1})
    body = len(ok), 0

    def bad_prefix(name, what, code, **fields):
        bad(name, what, prefix(*body, **fields) + ok, code)

    bad_prefix("bad_magic", "magic HTTP", "bad_frame", magic=b"HTTP")
    bad_prefix("bad_magic_lowercase", "magic eipc", "bad_frame", magic=b"eipc")
    bad("bad_magic_http_request", "a stray HTTP request",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_frame")
    bad_prefix("bad_version_0", "frame version 0", "unsupported_version",
               version=0)
    bad_prefix("bad_version_2", "frame version 2", "unsupported_version",
               version=2)
    bad_prefix("bad_flags", "flags 0x01", "bad_frame", flags=1)
    bad_prefix("bad_reserved_high", "reserved byte 6 set", "bad_frame",
               reserved=0x0100)
    bad_prefix("bad_reserved_low", "reserved byte 7 set", "bad_frame",
               reserved=0x0001)
    bad("bad_header_length_0", "header length 0", prefix(0, 0), "too_large")
    bad("bad_header_length_1", "header length 1", prefix(1, 0) + b"{",
        "too_large")
    over = header_padded_to(DEFAULT_LIMITS["max_header_bytes"] + 1,
                            {"type": "ping", "id": 1})
    bad("bad_header_over_limit", "a header one byte past max_header_bytes",
        frame(over)["bytes"], "too_large")
    bad("bad_header_length_max", "header length 2^32-1, nothing after",
        prefix(2**32 - 1, 0), "too_large")
    header = canonical({"type": "run", "id": 27})
    limit = DEFAULT_LIMITS["max_frame_bytes"] - 16 - len(header)
    bad("bad_frame_over_limit", "a payload one byte past max_frame_bytes",
        prefix(len(header), limit + 1) + header, "too_large")
    bad("bad_payload_length_max", "payload length 2^32-1",
        prefix(len(header), 2**32 - 1) + header, "too_large")
    small = {"limits": SMALL_LIMITS}
    bad("bad_header_over_small_limit", "a 129-byte header, limit 128",
        frame(header_padded_to(129, {"type": "run", "id": 1}))["bytes"],
        "too_large", **small)
    bad("bad_frame_over_small_limit", "a 513-byte frame, limit 512",
        prefix(128, 369) + canonical(header_padded_to(128, {"type": "run",
                                                            "id": 1})),
        "too_large", **small)
    bad("bad_after_good_frame", "a ping, then a frame with a bad magic",
        prefix(*body, magic=b"EIPX") + ok, "bad_frame",
        before=[frame({"type": "ping", "id": 1})])


def bad_headers():
    for name, what, text in [
            ("not_json", "not JSON", b"{nope"),
            ("cut_json", "JSON cut short", b'{"type":"ping","id":1'),
            ("trailing_garbage", "bytes after the object",
             b'{"type":"ping","id":1}x'),
            ("nul_after_object", "a NUL byte, then bytes, after the object",
             b'{"type":"ping","id":1}\x00xyz'),
            ("byte_order_mark", "a UTF-8 byte order mark first",
             b'\xef\xbb\xbf{"type":"ping","id":1}'),
            ("whitespace_only", "two spaces", b"  "),
            ("invalid_utf8", "a 0xFF byte in a string",
             b'{"type":"p\xffng","id":1}'),
            ("utf8_surrogate", "a surrogate encoded in UTF-8",
             b'{"type":"\xed\xa0\x80","id":1}'),
            ("utf8_overlong", "an overlong UTF-8 sequence",
             b'{"type":"\xc0\xaf","id":1}'),
            ("escaped_unpaired_surrogate", "\\ud800 with no low half",
             b'{"type":"ping","id":1,"s":"\\ud800"}'),
            ("escaped_lone_low_surrogate", "\\udc0d with no high half",
             b'{"type":"ping","id":1,"s":"\\udc0dx"}'),
            ("nan", "NaN", b'{"type":"ping","id":1,"v":NaN}'),
            ("infinity", "-Infinity", b'{"type":"ping","id":1,"v":-Infinity}'),
            ("number_past_double", "1e400",
             b'{"type":"ping","id":1,"v":1e400}'),
            ("integer_past_double", "a 310-digit integer",
             b'{"type":"ping","id":1,"v":1' + b"0" * 309 + b"}"),
            ("single_quotes", "single quotes", b"{'type':'ping','id':1}"),
            ("trailing_comma", "a trailing comma", b'{"type":"ping","id":1,}'),
            ("comment", "a comment", b'{"type":"ping","id":1}/* c */'),
            ("utf16", "UTF-16",
             '{"type":"ping","id":1}'.encode("utf-16-le")),
            ("control_character", "a raw control character in a string",
             b'{"type":"pi\x01ng","id":1}'),
            ("array", "an array", b'["type","ping","id",1]'),
            ("string", "a string", b'"ping"'),
            ("number", "a number", b"12"),
            ("null", "null", b"null"),
            ("empty_object", "{}", b"{}"),
            ("no_type", "no type", b'{"id":1}'),
            ("type_number", "type a number", b'{"type":1,"id":1}'),
            ("type_null", "type null", b'{"type":null,"id":1}'),
            ("type_array", "type a list", b'{"type":["ping"],"id":1}'),
            ("no_id", "no id", b'{"type":"ping"}'),
            ("id_string", "id a string", b'{"type":"ping","id":"1"}'),
            ("id_float", "id 1.0", b'{"type":"ping","id":1.0}'),
            ("id_exponent", "id 1e2", b'{"type":"ping","id":1e2}'),
            ("id_negative", "id -1", b'{"type":"ping","id":-1}'),
            ("id_bool", "id true", b'{"type":"ping","id":true}'),
            ("id_past_2_53", "id 2^53",
             b'{"type":"ping","id":9007199254740992}'),
            ("id_u64_max", "id 2^64-1",
             b'{"type":"ping","id":18446744073709551615}'),
            ("id_null_from_client", "id null in a client's frame",
             b'{"type":"ping","id":null}'),
            ("nested_257_deep", "arrays nested 257 deep, the header counted",
             b'{"type":"ping","id":1,"v":' + b"[" * 256 + b"]" * 256 + b"}"),
            ("nested_deep_in_strings_too", "brackets in a string do not "
             "count, but 257 real levels do",
             b'{"type":"ping","id":1,"s":"[[[[","v":' + b"[" * 256
             + b"]" * 256 + b"}"),
    ]:
        bad_header("bad_header_" + name, what, text)


def all_vectors():
    """Every vector, in the manifest's order."""
    VECTORS.clear()
    for group in (requests, replies, edges, bad_prefixes, bad_headers):
        group()
    return list(VECTORS)
