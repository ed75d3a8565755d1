"""static/app.js's `signed-body` htmx extension, run by Node.js with the vendored
js-sha256: the body it sends has the `x-amz-content-sha256` that CloudFront's origin
access control needs (and the dev server checks), computed as Python's hashlib does, and
every form that posts is boosted so that htmx sends it. (A real browser runs it in the
browser tests; this pins the contract without one.)"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from stratoflow.ui.devserver import payload_hash_problem

STATIC = Path(__file__).resolve().parents[2] / "sdk" / "stratoflow" / "ui" / "static"
SHA256_JS = STATIC / "vendor" / "sha256.min.js"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not SHA256_JS.exists(),
    reason="needs Node.js and the vendored js-sha256 (make install)",
)

# A page's globals, as far as app.js touches them: the extension and the listeners are
# captured, then called as htmx would.
HARNESS = """
const vm = require("vm");
const fs = require("fs");
const [sha256Js, appJs, fields] = process.argv.slice(1);
const listeners = {};
const extensions = {};
const context = {
  URLSearchParams, FormData, JSON, String, Math,
  document: {
    addEventListener: (name, fn) => { listeners[name] = fn; },
    getElementById: () => null,
    documentElement: {},
  },
  getComputedStyle: () => ({ getPropertyValue: () => "" }),
  htmx: { defineExtension: (name, ext) => { extensions[name] = ext; } },
};
context.window = context;
context.globalThis = context;
vm.createContext(context);
vm.runInContext(fs.readFileSync(sha256Js, "utf8"), context);
vm.runInContext(fs.readFileSync(appJs, "utf8"), context);

const form = new FormData();
for (const [key, value] of JSON.parse(fields)) form.append(key, value);
const headers = {};
const xhr = { setRequestHeader: (name, value) => { headers[name] = value; } };
const elt = { closest: () => null };
const body = extensions["signed-body"].encodeParameters(xhr, form, elt);

function element(tag, attributes) {
  return {
    tagName: tag,
    getAttribute: (name) => (name in attributes ? attributes[name] : null),
    hasAttribute: (name) => name in attributes,
    setAttribute: (name, value) => { attributes[name] = value; },
    attributes,
  };
}
const forms = [
  element("FORM", { method: "POST" }),
  element("FORM", { method: "get" }),
  element("FORM", { method: "post", "hx-boost": "false" }),
  element("A", { href: "/" }),
];
for (const target of forms) listeners["htmx:beforeProcessNode"]({ target });
const multipart = extensions["signed-body"].encodeParameters(
  xhr, form, { closest: () => ({}) });
process.stdout.write(JSON.stringify({
  body, headers, multipart,
  boosted: forms.map((f) => f.attributes["hx-boost"] || null),
}));
"""


def run(fields: list[tuple[str, str]]) -> dict[str, object]:
    done = subprocess.run(
        ["node", "-e", HARNESS, str(SHA256_JS), str(STATIC / "app.js"), json.dumps(fields)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_body_carries_its_sha256_as_aws_and_the_dev_server_check_it():
    fields = [
        ("csrf_token", "tok/+=en"),
        ("n", "ünïcödé & <script>"),
        ("tags", "a"),
        ("tags", "b c"),
        ("empty", ""),
    ]
    result = run(fields)
    body = str(result["body"])
    assert parse_qsl(body, keep_blank_values=True) == fields
    digest = hashlib.sha256(body.encode()).hexdigest()
    assert result["headers"] == {"x-amz-content-sha256": digest}
    headers = {"x-amz-content-sha256": digest}
    assert payload_hash_problem("POST", headers, body.encode()) is None
    assert payload_hash_problem("POST", headers, body.encode() + b"&x=1") is not None


def test_an_empty_form_is_signed_too():
    result = run([])
    assert result["body"] == ""
    assert result["headers"] == {"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()}


def test_every_form_that_posts_is_boosted_and_multipart_is_left_to_htmx():
    result = run([("a", "b")])
    # POST form: boosted; GET form, an explicit hx-boost="false", a link: untouched.
    assert result["boosted"] == ["true", None, "false", None]
    assert result["multipart"] is None
