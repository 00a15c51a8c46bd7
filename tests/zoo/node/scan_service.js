// Zoo service "audits" in Node.js (standard library only): one worker of a scan API.
//
//   POST /v3/audits              201 {"audit": {"ref", "phase": "pending"}}; body
//                                {"target": "BTC", "fail": false}; header X-Tenant
//   GET  /v3/audits/<ref>        200 {"audit": {"ref", "phase"}, "owner"}; phase pending,
//                                probing, finished or crashed; 404 unknown or not yours
//   GET  /v3/audits/<ref>/report 202 while pending/probing, 200 {"audit", "findings"}
//                                when over; 404 unknown or not yours
//   GET  /healthz                200 (for --ready-path /healthz)
//
// An audit takes 1-2 s (from its ref); its record lives for the audit plus three times
// the promised retention (RETENTION_S). Listens on 127.0.0.1:$PORT (or --port N).
//
// Variants: correct (records in Redis at $REDIS_URL, key audit:<ref>), or with
// SCAN_STATE=memory (or --memory) the BUG of keeping records in this process's memory:
// every other worker answers 404 for an audit it did not create (status_not_found).
"use strict";

const http = require("http");
const net = require("net");
const crypto = require("crypto");

const RETENTION_S = 6;
const SCAN_S = [1.0, 2.0];
const args = process.argv.slice(2);
const portArg = args.indexOf("--port");
const PORT = Number(portArg >= 0 ? args[portArg + 1] : process.env.PORT);
const MEMORY = args.includes("--memory") || process.env.SCAN_STATE === "memory";
const WORKER = process.env.WORKER_ID || "?";

// ------------------------------------------------------------ a minimal RESP client
class Redis {
  constructor(url) {
    const u = new URL(url || "redis://127.0.0.1:6379");
    this.host = u.hostname || "127.0.0.1";
    this.port = Number(u.port || 6379);
    this.password = u.password ? decodeURIComponent(u.password) : "";
    this.db = u.pathname && u.pathname.length > 1 ? u.pathname.slice(1) : "";
    this.sock = null;
    this.pending = [];
    this.buf = Buffer.alloc(0);
  }

  connect() {
    const sock = net.createConnection({ host: this.host, port: this.port });
    sock.setNoDelay(true);
    sock.on("data", (chunk) => this.onData(chunk));
    const fail = (err) => {
      if (this.sock !== sock) return;
      this.sock = null;
      this.buf = Buffer.alloc(0);
      const waiting = this.pending;
      this.pending = [];
      for (const p of waiting) p.reject(err || new Error("redis connection closed"));
    };
    sock.on("error", fail);
    sock.on("close", () => fail(null));
    sock.setTimeout(3000, () => sock.destroy(new Error("redis timeout")));
    this.sock = sock;
    if (this.password) this.send(["AUTH", this.password]).catch(() => {});
    if (this.db) this.send(["SELECT", this.db]).catch(() => {});
  }

  send(argv) {
    if (this.sock === null) this.connect();
    let out = `*${argv.length}\r\n`;
    for (const a of argv) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock.write(out);
    });
  }

  onData(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const parsed = parseReply(this.buf, 0);
      if (parsed === null) return;
      this.buf = this.buf.subarray(parsed.end);
      const p = this.pending.shift();
      if (!p) continue;
      if (parsed.value instanceof Error) p.reject(parsed.value);
      else p.resolve(parsed.value);
    }
  }
}

function parseReply(buf, at) {
  const eol = buf.indexOf("\r\n", at);
  if (eol < 0) return null;
  const kind = String.fromCharCode(buf[at]);
  const line = buf.toString("utf8", at + 1, eol);
  if (kind === "+") return { value: line, end: eol + 2 };
  if (kind === "-") return { value: new Error(line), end: eol + 2 };
  if (kind === ":") return { value: Number(line), end: eol + 2 };
  if (kind === "$") {
    const n = Number(line);
    if (n < 0) return { value: null, end: eol + 2 };
    if (buf.length < eol + 2 + n + 2) return null;
    return { value: buf.toString("utf8", eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
  }
  if (kind === "*") {
    const n = Number(line);
    const items = [];
    let end = eol + 2;
    for (let i = 0; i < n; i++) {
      const item = parseReply(buf, end);
      if (item === null) return null;
      items.push(item.value);
      end = item.end;
    }
    return { value: n < 0 ? null : items, end };
  }
  return { value: new Error(`bad reply ${kind}`), end: buf.length };
}

// ------------------------------------------------------------------------- records
function redisRecords() {
  const redis = new Redis(process.env.REDIS_URL);
  return {
    async get(ref) {
      const raw = await redis.send(["GET", `audit:${ref}`]);
      return raw === null ? null : JSON.parse(raw);
    },
    async put(ref, record, ttlS) {
      const ms = Math.ceil(ttlS * 1000);
      await redis.send(["SET", `audit:${ref}`, JSON.stringify(record), "PX", ms]);
    },
  };
}

function memoryRecords() {
  const records = new Map(); // BUG: this worker's memory, invisible to the others
  return {
    async get(ref) {
      const found = records.get(ref);
      if (!found || found.expires < Date.now()) return null;
      return found.record;
    },
    async put(ref, record, ttlS) {
      records.set(ref, { record, expires: Date.now() + ttlS * 1000 });
    },
  };
}

const records = MEMORY ? memoryRecords() : redisRecords();

// --------------------------------------------------------------------------- audits
function scanSeconds(ref) {
  const h = crypto.createHash("sha256").update(ref).digest().readUInt32BE(0) / 0xffffffff;
  return SCAN_S[0] + (SCAN_S[1] - SCAN_S[0]) * h;
}

function phase(record) {
  const done = (Date.now() - record.created) / 1000 / record.scan_s;
  if (done >= 1) return record.fail ? "crashed" : "finished";
  return done < 0.25 ? "pending" : "probing";
}

function answer(res, code, body) {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "x-audit-worker": WORKER,
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString() || "{}"));
      } catch {
        resolve(null);
      }
    });
  });
}

async function handle(req, res) {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/healthz") return answer(res, 200, { ok: true, worker: WORKER });
  const tenant = req.headers["x-tenant"];
  if (!tenant) return answer(res, 401, { error: "X-Tenant header required" });
  if (req.method === "POST" && url.pathname === "/v3/audits") {
    const body = await readBody(req);
    if (body === null || typeof body !== "object") return answer(res, 400, { error: "bad JSON" });
    const ref = `a${crypto.randomBytes(8).toString("hex")}`;
    const record = {
      owner: tenant,
      target: typeof body.target === "string" ? body.target : "",
      fail: Boolean(body.fail),
      created: Date.now(),
      scan_s: scanSeconds(ref),
    };
    await records.put(ref, record, record.scan_s + 3 * RETENTION_S);
    return answer(res, 201, { audit: { ref, phase: "pending" } });
  }
  const m = /^\/v3\/audits\/([A-Za-z0-9]+)(\/report)?$/.exec(url.pathname);
  if (req.method !== "GET" || m === null) return answer(res, 404, { error: "no such route" });
  const ref = m[1];
  const record = await records.get(ref);
  if (record === null || record.owner !== tenant) {
    return answer(res, 404, { error: "no such audit" });
  }
  const audit = { ref, phase: phase(record) };
  if (!m[2]) return answer(res, 200, { audit, owner: tenant });
  if (audit.phase === "pending" || audit.phase === "probing") return answer(res, 202, { audit });
  const findings = audit.phase === "crashed" ? [] : [{ target: record.target || "ANY", risk: 1 }];
  return answer(res, 200, { audit, findings });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => answer(res, 503, { error: String(err.message || err) }));
});
server.keepAliveTimeout = 24 * 3600 * 1000; // the router keeps connections open
server.headersTimeout = 0;
server.requestTimeout = 0;
server.listen(PORT, "127.0.0.1", () => {
  console.log(`audits worker ${WORKER} on 127.0.0.1:${PORT} (${MEMORY ? "memory" : "redis"})`);
});
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close(() => process.exit(0)); // in-flight requests finish
    server.closeIdleConnections();
  });
}
