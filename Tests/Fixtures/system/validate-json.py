#!/usr/bin/python3
"""Validates JSON documents against a JSON Schema (draft 2020-12) with python3-jsonschema:
  validate-json.py SCHEMA FILE...   prints one line per error and exits 1 if any document is invalid."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
failed = False
for path in sys.argv[2:]:
    for error in validator.iter_errors(json.load(open(path))):
        failed = True
        print(f"{path}: {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}")
sys.exit(1 if failed else 0)
