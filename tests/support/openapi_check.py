#!/usr/bin/env python3
"""Checks server responses against the OpenAPI document (server/openapi.json).

    openapi_check.py DOCUMENT

Reads one exchange per stdin line, a JSON object {"method", "target", "status", "content_type",
"headers": {name: value}, "body"}, and answers one line per exchange: {"ok": true} or
{"ok": false, "problems": [...]}. The test HTTP client (tests/support/http_client.h) keeps one of
these processes per test process and fails the test on any problem, so every response the server
test suite receives is checked:

- the path matches a documented path template (else the answer must be 404 with an error body),
  and the method one of its operations (else 405 with an error body);
- the status is one the operation declares;
- the media type is one the response declares, and the body validates against its schema
  (JSON Schema 2020-12, the dialect of OpenAPI 3.1, by the jsonschema package);
- every header the response declares as required is there and matches its schema.
"""

import json
import re
import sys
from urllib.parse import unquote

from jsonschema import Draft202012Validator

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class Checker:
    def __init__(self, document):
        self.doc = document
        self.validators = {}
        self.routes = []
        for template, item in document["paths"].items():
            pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]*", re.escape(template))
            self.routes.append((re.compile("^" + pattern + "$"), template, item))

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            node = self.pointer(node["$ref"])
        return node

    def pointer(self, ref):
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported: {ref}")
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
        return node

    def validate(self, pointer, instance):
        """Problems of `instance` against the schema at `pointer` (a JSON pointer into the document)."""
        v = self.validators.get(pointer)
        if v is None:
            # The whole document is the root resource, so that every "#/components/..." reference
            # inside the schema resolves; the root's own keywords other than $ref are not schema
            # keywords and are ignored.
            root = dict(self.doc)
            root["$ref"] = pointer
            v = self.validators[pointer] = Draft202012Validator(root)
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
                for e in sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))][:10]

    def check(self, x):
        method = x["method"].lower()
        path = x["target"].split("?", 1)[0]
        status = str(x["status"])
        where = f"{x['method']} {x['target']} -> {status}"
        matches = [(t, item) for regex, t, item in self.routes if regex.match(path)]
        if not matches:
            return self.check_error_only(x, "404", where, f"{path} matches no documented path")
        template, item = matches[0]
        if method not in item:
            return self.check_error_only(x, "405", where, f"{template} documents no {x['method']}")
        responses = item[method]["responses"]
        response = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
        if response is None:
            return [f"{where}: status {status} is not declared for {x['method']} {template} "
                    f"(declared: {', '.join(sorted(responses))})"]
        where = f"{where} ({x['method']} {template})"
        ref = None
        if "$ref" in response:
            ref = response["$ref"]
        response = self.resolve(response)
        problems = []
        headers = {k.lower(): v for k, v in x.get("headers", {}).items()}
        for name, header in response.get("headers", {}).items():
            header = self.resolve(header)
            value = headers.get(name.lower())
            if value is None:
                if header.get("required"):
                    problems.append(f"{where}: no {name} header, which the document requires")
                continue
            problems += [f"{where}: header {name}: {p}" for p in
                         self.validate_inline(header.get("schema", {}), value)]
        content = response.get("content")
        if not content:
            if x["body"]:
                problems.append(f"{where}: a body where the document declares none")
            return problems
        media = x.get("content_type", "").split(";", 1)[0].strip().lower()
        if media not in content:
            return problems + [f"{where}: content type {media!r} is not declared "
                               f"(declared: {', '.join(content)})"]
        base = ref if ref else self.response_pointer(template, method, status, responses)
        pointer = base + "/content/" + media.replace("~", "~0").replace("/", "~1") + "/schema"
        body = x["body"]
        if media.endswith("json"):
            try:
                body = json.loads(body)
            except ValueError as e:
                return problems + [f"{where}: the body is not JSON ({e}): {x['body'][:200]!r}"]
        problems += [f"{where}: {p}" for p in self.validate(pointer, body)]
        return problems

    def response_pointer(self, template, method, status, responses):
        key = status if status in responses else status[0] + "XX" if status[0] + "XX" in responses else "default"
        t = template.replace("~", "~0").replace("/", "~1")
        return f"#/paths/{t}/{method}/responses/{key}"

    def validate_inline(self, schema, instance):
        root = dict(self.doc)
        root.update(schema)
        return [e.message for e in Draft202012Validator(root).iter_errors(instance)]

    def check_error_only(self, x, expected, where, why):
        if str(x["status"]) != expected:
            return [f"{where}: {why}, so the answer must be {expected}"]
        try:
            body = json.loads(x["body"])
        except ValueError:
            return [f"{where}: {why}; its {expected} body is not JSON"]
        return [f"{where}: {p}" for p in self.validate("#/components/schemas/Error", body)]


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        checker = Checker(json.load(f))
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            problems = checker.check(json.loads(line))
        except Exception as e:  # a bug here must fail the test, not hang it
            problems = [f"openapi_check.py: {type(e).__name__}: {e}"]
        sys.stdout.write(json.dumps({"ok": not problems, "problems": problems}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
