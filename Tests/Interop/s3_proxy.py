"""A loopback proxy in front of an S3 endpoint that misbehaves on purpose, for tests.

--strip-conditional  drop If-None-Match and If-Match (a store that ignores conditional writes)
--fail-put TEXT      answer 500 InternalError to every PUT whose path contains TEXT
Usage: s3_proxy.py HOST PORT UPSTREAM_URL [options]; prints "ready" once listening.
"""
import argparse
import http.client
import http.server
import sys
import urllib.parse

parser = argparse.ArgumentParser()
parser.add_argument("host")
parser.add_argument("port", type=int)
parser.add_argument("upstream")
parser.add_argument("--strip-conditional", action="store_true")
parser.add_argument("--fail-put", default=None)
args = parser.parse_args()
upstream = urllib.parse.urlparse(args.upstream)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.command == "PUT" and args.fail_put and args.fail_put in self.path:
            error = b"<Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>"
            self.send_response(500)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        headers = {k: v for k, v in self.headers.items()
                   if not (args.strip_conditional and k.lower() in ("if-none-match", "if-match"))}
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        connection.request(self.command, self.path, body=body, headers=headers)
        reply = connection.getresponse()
        data = reply.read()
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


server = http.server.ThreadingHTTPServer((args.host, args.port), Proxy)
print("ready", flush=True)
server.serve_forever()
