"""Many SMTP sessions sending large messages at once, and the node's peak memory.

Shared by tests/test_untrusted_input.py (a small flood, every CI run) and
bench/smtp_memory.py (500 sessions of 49 MB). Python stdlib only.

`flood()` opens `sessions` connections, sends each one message of `size` bytes
concurrently (one body shared by all, written from memoryviews, so the client
holds it once) and returns every session's reply to the final dot. `peak_rss()`
reads the node's VmHWM, the most memory it ever held resident.
"""

import asyncio


def make_body(size, line=998):
    """`size` bytes of message (headers, then lines of `line` octets with CRLF)."""
    head = b"Subject: flood\r\nFrom: <flood@example.net>\r\n\r\n"
    row = (b"x" * (line - 2)) + b"\r\n"
    rows, rest = divmod(max(0, size - len(head)), len(row))
    tail = b"y" * max(0, rest - 2) + b"\r\n" if rest else b""
    return head + row * rows + tail


def status_kib(pid, field):
    """A field of /proc/PID/status in KiB (VmHWM, VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for row in f:
            if row.startswith(field + ":"):
                return int(row.split()[1])
    raise KeyError(field)


def peak_rss(pid):
    """The node's peak resident memory so far, in bytes."""
    return status_kib(pid, "VmHWM") * 1024


async def _reply(reader):
    """One SMTP reply (all its lines); returns the last line as text."""
    while True:
        row = await reader.readline()
        if not row:
            raise ConnectionError("connection closed")
        if row[3:4] != b"-":
            return row.decode("ascii", "replace").rstrip("\r\n")


async def _session(host, port, rcpt, body, chunk, in_data, hold):
    """One delivery; `in_data` is released once, when the session is in DATA
    or has failed before it; the body goes out once `hold` is set."""
    released = False

    def ready():
        nonlocal released
        if not released:
            released = True
            in_data.release()

    writer = None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        await _reply(reader)
        writer.write(b"EHLO flood.example.net\r\n")
        await _reply(reader)
        writer.write(b"MAIL FROM:<flood@example.net>\r\n")
        mail = await _reply(reader)
        writer.write(b"RCPT TO:<%s>\r\n" % rcpt.encode())
        rcpt_reply = await _reply(reader)
        if not (mail.startswith("250") and rcpt_reply.startswith("250")):
            return "refused before DATA: %s / %s" % (mail, rcpt_reply)
        writer.write(b"DATA\r\n")
        go = await _reply(reader)
        if not go.startswith("354"):
            return "DATA: " + go
        ready()
        await hold.wait()  # every session is in DATA before any sends its body
        view = memoryview(body)
        for off in range(0, len(view), chunk):
            writer.write(view[off:off + chunk])
            await writer.drain()
        writer.write(b".\r\n")
        final = await _reply(reader)
        writer.write(b"QUIT\r\n")
        await _reply(reader)
        return final
    except (OSError, ConnectionError) as e:
        return "error: %r" % (e,)
    finally:
        ready()
        if writer is not None:
            writer.close()


async def _flood(host, port, rcpts, body, chunk, ready_timeout):
    # Every session reaches DATA (bounded wait), then all send at once: the
    # worst case for memory, every message half received at the same time.
    in_data, hold = asyncio.Semaphore(0), asyncio.Event()
    tasks = [asyncio.create_task(_session(host, port, r, body, chunk, in_data, hold))
             for r in rcpts]

    async def all_in_data():
        for _ in rcpts:
            await in_data.acquire()

    try:
        await asyncio.wait_for(all_in_data(), ready_timeout)
    except asyncio.TimeoutError:
        pass  # some session was refused or failed: it reports why
    hold.set()
    return await asyncio.gather(*tasks)


def flood(host, port, rcpts, size, chunk=1 << 20, ready_timeout=60.0):
    """Sends one message of `size` bytes to each of `rcpts` (one session each),
    all at once; returns each session's reply to the final dot, in order."""
    body = make_body(size)
    return asyncio.run(_flood(host, port, list(rcpts), body, chunk, ready_timeout))
