"""Serves the API's OpenAPI description, the contract the fuzz tests check responses against."""

import json
from importlib import resources

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)
_SPEC = json.loads(resources.files(__package__).joinpath("openapi.json").read_text())


@bp.get("/api/openapi.json")
def openapi():
    return jsonify(_SPEC)
