#!/usr/bin/env python3
"""Offline checks of the SFDX source under infra/salesforce/force-app.

    python3 check_metadata.py [ROOT]      (ROOT defaults to force-app beside this file)

For every `*-meta.xml`: well-formed XML, root element in the Metadata API namespace
(http://soap.sforce.com/2006/04/metadata), and the root element the file's suffix calls for
(a suffix not in SUFFIXES fails, so a new metadata type gets registered here on purpose).
Then the references between components that a deploy would otherwise be the first to catch:
permission sets name existing apps, tabs, pages, classes, objects and fields; Lightning apps
hold existing tabs; layouts place existing fields of an existing object; flows call existing
outbound messages; External Client App parts name an existing app; tabs name existing pages;
every Visualforce page and Apex class has its content file. Finally no file carries a consumer
key or secret. Prints one line per problem; exits 1 if any, 0 when clean.
"""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

NS = "http://soap.sforce.com/2006/04/metadata"
Q = "{%s}" % NS

# file suffix (before -meta.xml) -> root element
SUFFIXES = {
    "cls": "ApexClass",
    "page": "ApexPage",
    "tab": "CustomTab",
    "object": "CustomObject",
    "field": "CustomField",
    "md": "CustomMetadata",
    "permissionset": "PermissionSet",
    "cspTrustedSite": "CspTrustedSite",
    "app": "CustomApplication",
    "layout": "Layout",
    "workflow": "Workflow",
    "flow": "Flow",
    "eca": "ExternalClientApplication",
    "ecaGlblOauth": "ExtlClntAppGlobalOauthSettings",
    "ecaOauth": "ExtlClntAppOauthSettings",
    "ecaOauthPlcy": "ExtlClntAppOauthConfigurablePolicies",
    "ecaPlcy": "ExtlClntAppConfigurablePolicies",
}
STANDARD_OBJECTS = {"Account", "Contact", "Lead", "Opportunity", "Case", "User"}
SECRET_ELEMENTS = {"consumerKey", "consumerSecret", "oauthConsumerSecret"}


def text(el: ET.Element, name: str) -> str | None:
    child = el.find(Q + name)
    return child.text.strip() if child is not None and child.text else None


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "force-app"
    problems: list[str] = []
    docs: dict[Path, ET.Element] = {}

    files = sorted(root.rglob("*-meta.xml"))
    if not files:
        print(f"{root}: no *-meta.xml files")
        return 1
    for path in files:
        rel = path.relative_to(root)
        suffix = path.name[: -len("-meta.xml")].rsplit(".", 1)[-1]
        try:
            doc = ET.parse(path).getroot()
        except ET.ParseError as e:
            problems.append(f"{rel}: not well-formed XML: {e}")
            continue
        if not doc.tag.startswith(Q):
            problems.append(f"{rel}: root <{doc.tag}> is not in the Metadata API namespace {NS}")
            continue
        want = SUFFIXES.get(suffix)
        if want is None:
            problems.append(f"{rel}: unknown suffix .{suffix} (register it in SUFFIXES)")
        elif doc.tag != Q + want:
            problems.append(f"{rel}: root is <{doc.tag[len(Q):]}>, .{suffix} files hold <{want}>")
        for el in doc.iter():
            if el.tag.startswith(Q) and el.tag[len(Q):] in SECRET_ELEMENTS:
                problems.append(f"{rel}: carries <{el.tag[len(Q):]}>: never commit consumer keys or secrets")
        docs[path] = doc

    def names(sfx: str) -> set[str]:
        return {p.name[: -len(f".{sfx}-meta.xml")] for p in docs if p.name.endswith(f".{sfx}-meta.xml")}

    pages, classes, tabs, apps = names("page"), names("cls"), names("tab"), names("eca")
    lightning_apps = names("app")
    objects = names("object") | STANDARD_OBJECTS
    fields = {f"{p.parent.parent.name}.{p.name[: -len('.field-meta.xml')]}" for p in docs if p.name.endswith(".field-meta.xml")}
    outbound = set()
    for p, doc in docs.items():
        if p.name.endswith(".workflow-meta.xml"):
            obj = p.name[: -len(".workflow-meta.xml")]
            for om in doc.findall(Q + "outboundMessages"):
                outbound.add(f"{obj}.{text(om, 'fullName')}")

    # content files of matchingContentFile types
    for p in docs:
        for sfx in ("page", "cls"):
            if p.name.endswith(f".{sfx}-meta.xml") and not p.with_name(p.name[: -len("-meta.xml")]).is_file():
                problems.append(f"{p.relative_to(root)}: content file {p.name[: -len('-meta.xml')]} is missing")

    for p, doc in docs.items():
        rel = p.relative_to(root)
        tag = doc.tag[len(Q):]
        if tag == "PermissionSet":
            for el in doc.findall(Q + "applicationVisibilities"):
                if text(el, "application") not in lightning_apps:
                    problems.append(f"{rel}: app {text(el, 'application')} is not in the source")
            for el in doc.findall(Q + "tabSettings"):
                if text(el, "tab") not in tabs:
                    problems.append(f"{rel}: tab {text(el, 'tab')} is not in the source")
            for el in doc.findall(Q + "pageAccesses"):
                if text(el, "apexPage") not in pages:
                    problems.append(f"{rel}: page {text(el, 'apexPage')} is not in the source")
            for el in doc.findall(Q + "classAccesses"):
                if text(el, "apexClass") not in classes:
                    problems.append(f"{rel}: class {text(el, 'apexClass')} is not in the source")
            for el in doc.findall(Q + "objectPermissions"):
                if text(el, "object") not in objects:
                    problems.append(f"{rel}: object {text(el, 'object')} is not in the source")
            for el in doc.findall(Q + "fieldPermissions"):
                if text(el, "field") not in fields:
                    problems.append(f"{rel}: field {text(el, 'field')} is not in the source")
        elif tag == "CustomApplication":
            held = [el.text for el in doc.findall(Q + "tabs")]
            for tab in held:
                if not (tab or "").startswith("standard-") and tab not in tabs:
                    problems.append(f"{rel}: tab {tab} is not in the source")
            landing = text(doc, "defaultLandingTab")
            if landing is not None and landing not in held:
                problems.append(f"{rel}: defaultLandingTab {landing} is not one of the app's tabs")
        elif tag == "Layout":
            obj = p.name[: -len(".layout-meta.xml")].split("-", 1)[0]
            if obj not in objects:
                problems.append(f"{rel}: object {obj} is not in the source")
            for item in doc.iter(Q + "layoutItems"):
                fld = text(item, "field") or ""
                if fld.endswith("__c") and f"{obj}.{fld}" not in fields:
                    problems.append(f"{rel}: field {obj}.{fld} is not in the source")
        elif tag == "CustomTab":
            page = text(doc, "page")
            if page is not None and page not in pages:
                problems.append(f"{rel}: page {page} is not in the source")
            if page is None and text(doc, "url") is None and text(doc, "customObject") is None:
                problems.append(f"{rel}: neither a page, a url nor a custom object tab")
        elif tag == "Flow":
            for call in doc.findall(Q + "actionCalls"):
                if text(call, "actionType") == "outboundMessage" and text(call, "actionName") not in outbound:
                    problems.append(f"{rel}: outbound message {text(call, 'actionName')} is not in any workflows/*.workflow-meta.xml")
            start = doc.find(Q + "start")
            if start is not None and text(start, "object") and start.find(Q + "filters") is not None:
                obj = text(start, "object")
                for flt in start.findall(Q + "filters"):
                    fld = text(flt, "field") or ""
                    if fld.endswith("__c") and f"{obj}.{fld}" not in fields:
                        problems.append(f"{rel}: start filter field {obj}.{fld} is not in the source")
        elif tag.startswith("ExtlClntApp"):
            app = text(doc, "externalClientApplication")
            if app not in apps:
                problems.append(f"{rel}: externalClientApplication {app} is not in externalClientApps/")
        elif tag == "Workflow":
            obj = p.name[: -len(".workflow-meta.xml")]
            for om in doc.findall(Q + "outboundMessages"):
                for fld in om.findall(Q + "fields"):
                    if fld.text and fld.text.endswith("__c") and f"{obj}.{fld.text}" not in fields:
                        problems.append(f"{rel}: outbound message field {obj}.{fld.text} is not in the source")
                url = text(om, "endpointUrl") or ""
                if not re.match(r"^https://", url):
                    problems.append(f"{rel}: endpointUrl {url!r} must be https")

    for line in problems:
        print(line)
    print(f"checked {len(files)} metadata files under {root}: {'clean' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
