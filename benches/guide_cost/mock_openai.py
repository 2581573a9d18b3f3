# A minimal OpenAI-compatible server answering every request at once with a ~120-word text.
import json, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
ANSWER = ("This section follows its people through one turn of the story: " * 12).strip()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "mock", "object": "model"}]}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = sum(len(m.get("content") or "") for m in req["messages"]) // 4
        usage = {"prompt_tokens": prompt, "completion_tokens": 150, "total_tokens": prompt + 150}
        if not req.get("stream"):
            body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "mock",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
                "usage": usage}).encode()
            self.send_response(200); self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body); return
        self.send_response(200); self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked"); self.end_headers()
        def send(obj):
            data = ("data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "mock"}
        for word in ANSWER.split(" "):
            send({**base, "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]})
        send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage})
        send("[DONE]"); self.wfile.write(b"0\r\n\r\n")
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
