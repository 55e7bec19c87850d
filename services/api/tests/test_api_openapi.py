"""The OpenAPI document is complete: every route, every status code it can answer, with models."""

from __future__ import annotations

from fastapi.routing import APIRoute
from ticketflow.api import Settings, create_app
from ticketflow.api.routes import router

ERROR_REF = "#/components/schemas/ErrorResponse"

DOCUMENTED = {
    ("post", "/tickets"): {"200": "TicketAccepted", "202": "TicketAccepted"},
    ("get", "/tickets"): {"200": "TicketList"},
    ("get", "/tickets/{ticket_id}"): {"200": "TicketView"},
    ("post", "/tickets/{ticket_id}/decision"): {"200": "DecisionAccepted"},
    ("post", "/tickets/{ticket_id}/cancel"): {"202": "CancelAccepted"},
    ("get", "/healthz"): {"200": "Health"},
    ("get", "/readyz"): {"200": "Readiness"},
}
ERRORS = {
    ("post", "/tickets"): {"400", "409", "413", "415", "422", "503"},
    ("get", "/tickets"): {"400", "401", "422", "503"},
    ("get", "/tickets/{ticket_id}"): {"401", "404", "422", "503"},
    ("post", "/tickets/{ticket_id}/decision"): {
        "400",
        "401",
        "404",
        "409",
        "413",
        "415",
        "422",
        "503",
    },
    ("post", "/tickets/{ticket_id}/cancel"): {"401", "404", "409", "422", "503"},
    ("get", "/healthz"): set(),
    ("get", "/readyz"): {"503"},
}


def openapi() -> dict:
    return create_app(Settings()).openapi()


def schema_ref(response: dict) -> str:
    return response["content"]["application/json"]["schema"]["$ref"]


def test_every_route_is_documented_with_its_status_codes() -> None:
    doc = openapi()
    routes = {
        (method.lower(), route.path)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routes == set(DOCUMENTED)
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == set(DOCUMENTED)
    for (method, path), successes in DOCUMENTED.items():
        operation = doc["paths"][path][method]
        responses = operation["responses"]
        assert set(responses) == set(successes) | ERRORS[(method, path)], (method, path)
        for status, model in successes.items():
            assert schema_ref(responses[status]) == f"#/components/schemas/{model}"
        for status in ERRORS[(method, path)]:
            assert schema_ref(responses[status]) == ERROR_REF, (method, path, status)
            assert responses[status]["description"]
        assert operation["tags"] and operation["summary"]


def test_decision_endpoint_and_reads_declare_bearer_security() -> None:
    doc = openapi()
    for name in ("ApproverToken", "ReadToken"):
        scheme = doc["components"]["securitySchemes"][name]
        assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    secured = {
        ("post", "/tickets/{ticket_id}/decision"): [{"ApproverToken": []}],
        ("post", "/tickets/{ticket_id}/cancel"): [{"ApproverToken": []}],
        ("get", "/tickets"): [{"ReadToken": []}],
        ("get", "/tickets/{ticket_id}"): [{"ReadToken": []}],
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if (method, path) in secured:
                assert operation["security"] == secured[(method, path)], (method, path)
            else:
                assert "security" not in operation, (method, path)


def test_bodies_and_parameters_are_strict_and_have_examples() -> None:
    doc = openapi()
    schemas = doc["components"]["schemas"]
    for name in ("SubmitTicketRequest", "DecisionRequest"):
        assert schemas[name]["additionalProperties"] is False
        assert schemas[name]["examples"]
    for name in ("TicketAccepted", "TicketView", "TicketList", "DecisionAccepted", "ErrorResponse"):
        assert schemas[name]["examples"], name
    submit = schemas["SubmitTicketRequest"]["properties"]
    assert submit["ticket_id"]["anyOf"][0]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    assert submit["subject"]["maxLength"] == 200
    params = {p["name"]: p for p in doc["paths"]["/tickets"]["get"]["parameters"]}
    assert params["limit"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"]["maximum"] == 200
    assert params["page_token"]["schema"]["anyOf"][0]["maxLength"] == 2048
    page = schemas["TicketList"]["properties"]
    assert {"tickets", "next_page_token", "total"} <= set(page)
    status_ref = params["status"]["schema"]["anyOf"][0]["$ref"]
    assert schemas[status_ref.rsplit("/", 1)[1]]["enum"][0] == "RECEIVED"
    path_param = doc["paths"]["/tickets/{ticket_id}"]["get"]["parameters"][0]
    assert path_param["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
