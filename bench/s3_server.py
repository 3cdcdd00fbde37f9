"""
A tiny in-memory S3 ListObjectsV2 endpoint for benchmarks (not for tests: moto is).

moto's listing slows down as the bucket grows (~1,000 keys/s at 100k keys), so it
would measure moto. This server answers `GET /<bucket>?list-type=2` from a sorted
in-memory list with pre-rendered XML, in well under a millisecond per page, so a
benchmark measures the client.

    python bench/s3_server.py --port 0 --creators 500 --posts 20 --files 10

prints `PORT <n>` then serves. Control endpoints (bench only):
    POST /__bench__/change?fraction=0.01&seed=1   modify etag/size of ~fraction of keys,
                                                  plus a few added and deleted keys
    GET  /__bench__/count                         number of keys

The bucket layout is contract §7: profile images, posts of images and a video, and
keys the sync must skip (.DS_Store, folder markers, a .txt per post).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import random
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

LAST_MODIFIED = "2026-01-15T12:34:56.000Z"


def build_keys(creators: int, posts: int, files: int) -> list[tuple[str, int, str]]:
    """(key, size, etag) for about creators × posts × files keys, plus profile images and skipped keys."""
    keys: list[tuple[str, int, str]] = []

    def add(key: str, size: int = 1000) -> None:
        keys.append((key, size, hashlib.md5(key.encode()).hexdigest()))

    for c in range(creators):
        creator = f"Criadora {c:04d} São" if c % 5 == 0 else f"creator_{c:04d}"
        add(f"{creator}/thumb.jpg")
        add(f"{creator}/profile/icon.png")
        add(f"{creator}/profile/banner.JPG")
        add(f"{creator}/")  # a folder marker: skipped
        for p in range(posts):
            post = f"Ensaio {p:02d} à beira-mar" if p % 4 == 0 else f"post-{p:02d}"
            for f in range(files - 1):
                if f == files - 2:
                    add(f"{creator}/{post}/video {f}.mp4", 5_000_000 + f)
                else:
                    add(f"{creator}/{post}/{f + 1}.jpg", 200_000 + f)
            # the 10th file of a post: skipped (hidden or not media)
            add(f"{creator}/{post}/.DS_Store" if p % 2 else f"{creator}/{post}/leia-me.txt", 10)
    keys.sort(key=lambda item: item[0].encode())  # S3 lists in UTF-8 byte order
    return keys


class Store:
    def __init__(self, keys: list[tuple[str, int, str]]):
        self.set(keys)

    def set(self, keys: list[tuple[str, int, str]]) -> None:
        keys.sort(key=lambda item: item[0].encode())
        self.keys = keys
        self.names = [k for k, _s, _e in keys]
        self.encoded = [k.encode() for k in self.names]
        self.xml = [
            (
                f"<Contents><Key>{escape(k)}</Key><LastModified>{LAST_MODIFIED}</LastModified>"
                f"<ETag>&quot;{e}&quot;</ETag><Size>{s}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            ).encode()
            for k, s, e in keys
        ]

    def change(self, fraction: float, seed: int) -> dict:
        rng = random.Random(seed)
        n = max(1, int(len(self.keys) * fraction))
        modified, added, deleted = n * 8 // 10, n // 10, n - n * 8 // 10 - n // 10
        keys = list(self.keys)
        for i in rng.sample(range(len(keys)), modified):
            key, size, _etag = keys[i]
            keys[i] = (key, size + 1, hashlib.md5(f"{key}:{seed}".encode()).hexdigest())
        media = [i for i, (k, _s, _e) in enumerate(keys) if k.endswith(".jpg") and "/profile/" not in k]
        for i in sorted(rng.sample(media, deleted), reverse=True):
            del keys[i]
        for j in range(added):
            key = f"creator_0001/post-01/extra {seed}-{j}.jpg"
            keys.append((key, 123, hashlib.md5(key.encode()).hexdigest()))
        self.set(keys)
        return {"modified": modified, "added": added, "deleted": deleted, "total": len(keys)}

    def page(self, prefix: str, start_after: str, max_keys: int) -> tuple[list[bytes], str | None]:
        lo = bisect.bisect_right(self.encoded, start_after.encode()) if start_after else 0
        if prefix:
            lo = max(lo, bisect.bisect_left(self.encoded, prefix.encode()))
        out: list[bytes] = []
        i = lo
        pre = prefix.encode()
        while i < len(self.encoded) and len(out) < max_keys:
            if not self.encoded[i].startswith(pre):
                i = len(self.encoded)
                break
            out.append(self.xml[i])
            i += 1
        truncated = i < len(self.encoded) and self.encoded[i].startswith(pre)
        return out, (self.names[i - 1] if truncated else None)


def make_handler(store: Store):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real endpoint

        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/xml") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            if url.path == "/__bench__/count":
                return self._send(200, str(len(store.keys)).encode(), "text/plain")
            if query.get("list-type") != "2":
                return self._send(400, b"<Error><Code>NotImplemented</Code></Error>")
            prefix = query.get("prefix", "")
            max_keys = min(int(query.get("max-keys", "1000")), 1000)
            # The continuation token is opaque to clients: here, the last key of the previous page.
            start_after = query.get("continuation-token") or query.get("start-after", "")
            contents, last = store.page(prefix, start_after, max_keys)
            head = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>bench</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents)}</KeyCount>"
                f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{'true' if last else 'false'}</IsTruncated>"
            )
            if query.get("continuation-token"):
                head += f"<ContinuationToken>{escape(query['continuation-token'])}</ContinuationToken>"
            if last:
                head += f"<NextContinuationToken>{escape(last)}</NextContinuationToken>"
            body = head.encode() + b"".join(contents) + b"</ListBucketResult>"
            self._send(200, body)

        def do_POST(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if url.path == "/__bench__/change":
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                result = store.change(float(query.get("fraction", "0.01")), int(query.get("seed", "1")))
                return self._send(200, repr(result).encode(), "text/plain")
            self._send(404, b"")

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--creators", type=int, default=500)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--files", type=int, default=10)
    args = parser.parse_args(argv)
    store = Store(build_keys(args.creators, args.posts, args.files))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(store))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]} KEYS {len(store.keys)}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
