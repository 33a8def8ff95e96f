"""simple-salesforce, unchanged, against sfsim over HTTPS (CA trusted via REQUESTS_CA_BUNDLE)."""
import uuid
from urllib.parse import urlparse

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceExpiredSession

ORG = "acme"
USER = "admin@acme.example"


def host_port(sim):
    u = urlparse(sim["urls"]["https"])
    return f"{u.hostname}:{u.port}"


@pytest.fixture()
def sf(sim, admin):
    tok = admin.post("/token", {"username": USER})
    return Salesforce(instance_url=tok["instance_url"], session_id=tok["access_token"], version="64.0")


def test_session_login_and_query(sf):
    res = sf.query("SELECT Id, Username, Manager.Email, UserRole.ParentRoleId FROM User WHERE IsActive = true ORDER BY Username")
    assert res["totalSize"] >= 4
    assert res["records"][0]["attributes"]["type"] == "User"
    by_name = {r["Username"]: r for r in res["records"]}
    assert by_name["ana@acme.example"]["Manager"]["Email"] == "vp@acme.example"
    assert by_name["admin@acme.example"]["Manager"] is None
    assert sf.api_usage["api-usage"].used >= 1


def test_username_password_soap_login(sim):
    # The login host is modelled as a leading path segment: https://127.0.0.1:PORT/login.salesforce.com/...
    sf = Salesforce(username=USER, password="password", security_token="TOKEN",
                    domain=f"{host_port(sim)}/login", version="64.0")
    assert sf.query("SELECT Id FROM User WHERE Username = 'admin@acme.example'")["totalSize"] == 1


def test_bad_password(sim):
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(username=USER, password="nope", security_token="TOKEN",
                   domain=f"{host_port(sim)}/login", version="64.0")


def test_oauth_password_grant(sim):
    app = requests.get(sim["urls"]["https"] + "/_sim/info").json()["apps"][0]
    sf = Salesforce(username=USER, password="password", consumer_key=app["client_id"],
                    consumer_secret=app["client_secret"], domain=f"{host_port(sim)}/login", version="64.0")
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] >= 4


def test_query_all_pages(sf, admin):
    tag = uuid.uuid4().hex[:8]
    admin.post(f"/orgs/{ORG}/records/Contact", [{"LastName": f"P{tag}{i:03}", "Email": f"p{i}@x.example"} for i in range(25)])
    admin.post("/settings", {"page_size": 10}, method="PUT")
    try:
        res = sf.query(f"SELECT Id, LastName FROM Contact WHERE LastName LIKE 'P{tag}%' ORDER BY LastName")
        assert res["done"] is False and "nextRecordsUrl" in res and len(res["records"]) == 10
        assert "/query/01g" in res["nextRecordsUrl"]
        allres = sf.query_all(f"SELECT Id, LastName FROM Contact WHERE LastName LIKE 'P{tag}%' ORDER BY LastName")
        assert allres["totalSize"] == 25
        assert [r["LastName"] for r in allres["records"]] == [f"P{tag}{i:03}" for i in range(25)]
    finally:
        admin.post("/settings", {"page_size": 2000}, method="PUT")


def test_sobject_crud(sf):
    created = sf.Contact.create({"LastName": "Crud", "Email": "crud@x.example"})
    assert created["success"] and created["id"].startswith("003")
    got = sf.Contact.get(created["id"])
    assert got["Email"] == "crud@x.example" and got["Name"] == "Crud"
    assert sf.Contact.update(created["id"], {"Email": "crud2@x.example"}) == 204
    assert sf.Contact.get(created["id"])["Email"] == "crud2@x.example"
    assert sf.Contact.delete(created["id"]) == 204
    assert sf.query(f"SELECT Id FROM Contact WHERE Id = '{created['id']}'")["totalSize"] == 0
    assert sf.query_all(f"SELECT Id FROM Contact WHERE Id = '{created['id']}'", include_deleted=True)["totalSize"] == 1
    desc = sf.Contact.describe()
    assert any(f["name"] == "External_Id__c" and f["externalId"] for f in desc["fields"])


def test_upsert_by_external_id(sf):
    key = uuid.uuid4().hex
    assert sf.Learning_Result__c.upsert(f"External_Id__c/{key}", {"Name": "r1", "Score__c": 80}) == 201
    assert sf.Learning_Result__c.upsert(f"External_Id__c/{key}", {"Score__c": 90}) == 200
    rec = sf.Learning_Result__c.get_by_custom_id("External_Id__c", key)
    assert rec["Score__c"] == 90 and rec["Name"] == "r1"


def test_malformed_and_invalid_field(sf):
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query("SELECT Id FROM User WHERE")
    assert e.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query("SELECT Nope__c FROM User")
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_expired_session(sim, admin):
    tok = admin.post("/token", {"username": "ben@acme.example"})
    sf = Salesforce(instance_url=tok["instance_url"], session_id=tok["access_token"], version="64.0")
    sf.query("SELECT Id FROM User LIMIT 1")
    admin.post(f"/orgs/{ORG}/expire_sessions")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User LIMIT 1")


def test_bulk2_upsert_and_query(sf):
    tag = uuid.uuid4().hex[:8]
    records = [{"External_Id__c": f"{tag}-{i}", "Name": f"S{i}", "Score__c": i} for i in range(50)]
    res = sf.bulk2.Survey_Response__c.upsert(records=records, external_id_field="External_Id__c", wait=1)
    assert res[0]["numberRecordsProcessed"] == 50 and res[0]["numberRecordsFailed"] == 0
    results = sf.bulk2.Survey_Response__c.get_successful_records(res[0]["job_id"])
    assert "sf__Id" in results and "sf__Created" in results
    rows = []
    for chunk in sf.bulk2.Survey_Response__c.query(
            f"SELECT External_Id__c, Score__c FROM Survey_Response__c WHERE External_Id__c LIKE '{tag}-%'",
            max_records=20):
        rows.extend(chunk.strip().splitlines()[1:])
    assert len(rows) == 50


def test_sobject_collections_via_restful(sf):
    """sObject Collections through simple-salesforce's generic `restful` call."""
    tag = uuid.uuid4().hex[:8]
    created = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "Name": f"A{tag}"},
        {"attributes": {"type": "Contact"}, "LastName": f"C{tag}"},
        {"attributes": {"type": "Contact"}, "Email": "no-last-name@x.example"},
    ]})
    assert [r["success"] for r in created] == [True, True, False]
    assert created[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    acc, con = created[0]["id"], created[1]["id"]

    got = sf.restful("composite/sobjects/Contact", params={"ids": f"{con},003000000000000AAA", "fields": "LastName,Email"})
    assert got[0]["LastName"] == f"C{tag}" and got[1] is None
    got = sf.restful("composite/sobjects/Contact", method="POST", json={"ids": [con], "fields": ["Name"]})
    assert got[0]["Name"] == f"C{tag}"

    updated = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
        {"id": con, "attributes": {"type": "Contact"}, "Email": "c@x.example"},
        {"id": acc, "attributes": {"type": "Account"}, "Nope__c": 1},
    ]})
    assert [r["errors"][0]["statusCode"] for r in updated] == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_FIELD"]
    assert sf.Contact.get(con)["Email"] is None
    updated = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"id": con, "attributes": {"type": "Contact"}, "Email": "c@x.example"},
    ]})
    assert updated == [{"id": con, "success": True, "errors": []}]
    assert sf.Contact.get(con)["Email"] == "c@x.example"

    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{acc},{con},{con}", "allOrNone": "false"})
    assert [r["success"] for r in deleted] == [True, True, False]
    assert deleted[2]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"

    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.restful("composite/sobjects", method="POST",
                   json={"records": [{"attributes": {"type": "Account"}, "Name": str(i)} for i in range(201)]})
    assert e.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
