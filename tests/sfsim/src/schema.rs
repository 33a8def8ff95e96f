//! Object and field definitions: the standard objects (User, UserRole, Contact, Account, Lead),
//! the default custom objects, and per-org additions.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A field's data type, as `describe` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Record id.
    Id,
    /// Text.
    String,
    /// Long text.
    Textarea,
    /// Email.
    Email,
    /// Phone.
    Phone,
    /// URL.
    Url,
    /// Picklist (stored as text).
    Picklist,
    /// Checkbox.
    Boolean,
    /// Integer.
    Int,
    /// Number.
    Double,
    /// Currency.
    Currency,
    /// Date (`YYYY-MM-DD`).
    Date,
    /// Date and time.
    Datetime,
    /// Lookup to another object.
    Reference,
}

impl FieldType {
    /// The SOAP type `describe` shows.
    pub fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Int => "xsd:int",
            FieldType::Double | FieldType::Currency => "xsd:double",
            FieldType::Date => "xsd:date",
            FieldType::Datetime => "xsd:dateTime",
            _ => "xsd:string",
        }
    }
    /// Is the value text-like (compared case-insensitively, quoted in SOQL)?
    pub fn is_text(self) -> bool {
        matches!(self, FieldType::String | FieldType::Textarea | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::Picklist)
    }
    /// Is the value numeric?
    pub fn is_number(self) -> bool {
        matches!(self, FieldType::Int | FieldType::Double | FieldType::Currency)
    }
}

/// A field declaration (also the admin API's shape for custom fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldDef {
    /// API name, e.g. `External_Id__c`.
    pub name: String,
    /// Data type.
    #[serde(rename = "type")]
    pub ftype: FieldType,
    /// External ID flag.
    #[serde(default, rename = "externalId")]
    pub external_id: bool,
    /// Unique flag.
    #[serde(default)]
    pub unique: bool,
    /// Can be null.
    #[serde(default = "yes")]
    pub nillable: bool,
    /// Can be set on update.
    #[serde(default = "yes")]
    pub updateable: bool,
    /// Can be set on create.
    #[serde(default = "yes")]
    pub createable: bool,
    /// Target object of a reference.
    #[serde(default, rename = "referenceTo")]
    pub reference_to: Option<String>,
    /// Relationship name of a reference (`Manager` for `ManagerId`).
    #[serde(default, rename = "relationshipName")]
    pub relationship_name: Option<String>,
    /// Required on create (not nillable, no default).
    #[serde(default)]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl FieldDef {
    /// A plain, nillable, updateable field.
    pub fn new(name: &str, ftype: FieldType) -> Self {
        Self {
            name: name.into(),
            ftype,
            external_id: false,
            unique: false,
            nillable: true,
            updateable: true,
            createable: true,
            reference_to: None,
            relationship_name: None,
            required: false,
        }
    }
    fn system(name: &str, ftype: FieldType) -> Self {
        Self { nillable: false, updateable: false, createable: false, ..Self::new(name, ftype) }
    }
    fn reference(name: &str, to: &str, rel: &str) -> Self {
        Self { reference_to: Some(to.into()), relationship_name: Some(rel.into()), ..Self::new(name, FieldType::Reference) }
    }
    fn ext(name: &str) -> Self {
        Self { external_id: true, unique: true, ..Self::new(name, FieldType::String) }
    }
    fn required(mut self) -> Self {
        self.required = true;
        self.nillable = false;
        self
    }
}

/// A custom object declaration for the admin API and config files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectSpec {
    /// API name, ending in `__c`.
    pub name: String,
    /// Fields beyond the standard ones (Id, Name, OwnerId, dates).
    #[serde(default)]
    pub fields: Vec<FieldDef>,
}

/// An object in an org's schema.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    /// API name.
    pub name: String,
    /// 3-char key prefix.
    pub key_prefix: String,
    /// Custom object?
    pub custom: bool,
    /// Fields in describe order.
    pub fields: Vec<FieldDef>,
    by_name: HashMap<String, usize>,
    by_lc: HashMap<String, usize>,
    rel_lc: HashMap<String, usize>,
}

impl ObjectDef {
    /// Builds an object from its fields (standard system fields are added).
    pub fn new(name: &str, key_prefix: &str, custom: bool, fields: Vec<FieldDef>) -> Self {
        let mut all = vec![FieldDef::system("Id", FieldType::Id)];
        all.extend(fields);
        for (n, t) in [
            ("IsDeleted", FieldType::Boolean),
            ("CreatedDate", FieldType::Datetime),
            ("CreatedById", FieldType::Reference),
            ("LastModifiedDate", FieldType::Datetime),
            ("LastModifiedById", FieldType::Reference),
            ("SystemModstamp", FieldType::Datetime),
        ] {
            let mut f = FieldDef::system(n, t);
            if t == FieldType::Reference {
                f.reference_to = Some("User".into());
                f.relationship_name = Some(n.trim_end_matches("Id").into());
            }
            all.push(f);
        }
        let mut o = Self {
            name: name.into(),
            key_prefix: key_prefix.into(),
            custom,
            fields: Vec::new(),
            by_name: HashMap::new(),
            by_lc: HashMap::new(),
            rel_lc: HashMap::new(),
        };
        for f in all {
            o.add_field(f);
        }
        o
    }

    /// Adds (or replaces) a field.
    pub fn add_field(&mut self, f: FieldDef) {
        let lc = f.name.to_ascii_lowercase();
        if let Some(rel) = &f.relationship_name {
            self.rel_lc.insert(rel.to_ascii_lowercase(), self.fields.len());
        }
        if let Some(&i) = self.by_lc.get(&lc) {
            self.by_name.remove(&self.fields[i].name);
            self.by_name.insert(f.name.clone(), i);
            self.fields[i] = f;
        } else {
            self.by_lc.insert(lc, self.fields.len());
            self.by_name.insert(f.name.clone(), self.fields.len());
            self.fields.push(f);
        }
    }

    /// Finds a field by case-insensitive name.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.by_name.get(name).or_else(|| self.by_lc.get(&name.to_ascii_lowercase())).map(|&i| &self.fields[i])
    }

    /// Finds a reference field by its relationship name (`Manager` → `ManagerId`).
    pub fn relationship(&self, rel: &str) -> Option<&FieldDef> {
        self.rel_lc.get(&rel.to_ascii_lowercase()).map(|&i| &self.fields[i])
    }

    /// Has a `Name` field.
    pub fn has_name(&self) -> bool {
        self.by_lc.contains_key("name")
    }
}

fn s(n: &str) -> FieldDef {
    FieldDef::new(n, FieldType::String)
}

/// The standard and default custom objects every org starts with, with key prefixes.
pub fn standard_objects() -> Vec<ObjectDef> {
    use FieldType::*;
    let owner = || FieldDef::reference("OwnerId", "User", "Owner");
    let name_ro = || FieldDef { updateable: false, createable: false, ..s("Name") };
    vec![
        ObjectDef::new(
            "User",
            "005",
            false,
            vec![
                FieldDef { unique: true, ..s("Username") }.required(),
                FieldDef::new("Email", Email).required(),
                s("FirstName"),
                s("LastName").required(),
                name_ro(),
                s("Alias"),
                FieldDef::new("IsActive", Boolean),
                FieldDef::reference("ManagerId", "User", "Manager"),
                FieldDef::reference("UserRoleId", "UserRole", "UserRole"),
                FieldDef::new("UserType", Picklist),
                s("Title"),
                s("Department"),
                s("CompanyName"),
                FieldDef::new("Phone", Phone),
                s("FederationIdentifier"),
                s("TimeZoneSidKey"),
                s("LanguageLocaleKey"),
                FieldDef::new("LastLoginDate", Datetime),
                FieldDef::new("isQstreamUser__c", Boolean),
            ],
        ),
        ObjectDef::new(
            "UserRole",
            "00E",
            false,
            vec![
                s("Name").required(),
                s("DeveloperName"),
                FieldDef::reference("ParentRoleId", "UserRole", "ParentRole"),
                s("RollupDescription"),
            ],
        ),
        ObjectDef::new(
            "Account",
            "001",
            false,
            vec![
                s("Name").required(),
                s("AccountNumber"),
                FieldDef::new("Industry", Picklist),
                FieldDef::new("Phone", Phone),
                FieldDef::new("Website", Url),
                FieldDef::new("NumberOfEmployees", Int),
                FieldDef::ext("External_Id__c"),
                owner(),
            ],
        ),
        ObjectDef::new(
            "Contact",
            "003",
            false,
            vec![
                s("FirstName"),
                s("LastName").required(),
                name_ro(),
                FieldDef::new("Email", Email),
                FieldDef::new("Phone", Phone),
                s("Title"),
                s("Department"),
                FieldDef::reference("AccountId", "Account", "Account"),
                FieldDef::new("Birthdate", Date),
                FieldDef::new("Survey_Opt_In__c", Boolean),
                FieldDef::ext("External_Id__c"),
                owner(),
            ],
        ),
        ObjectDef::new(
            "Lead",
            "00Q",
            false,
            vec![
                s("FirstName"),
                s("LastName").required(),
                name_ro(),
                s("Company").required(),
                FieldDef::new("Email", Email),
                FieldDef::new("Status", Picklist),
                owner(),
            ],
        ),
        custom_object(
            "Learning_Result__c",
            "a00",
            vec![
                FieldDef::ext("External_Id__c"),
                FieldDef::reference("User__c", "User", "User__r"),
                s("Course__c"),
                FieldDef::new("Score__c", Double),
                FieldDef::new("Completed__c", Boolean),
                FieldDef::new("Completed_At__c", Datetime),
            ],
        ),
        custom_object(
            "Survey_Response__c",
            "a01",
            vec![
                FieldDef::ext("External_Id__c"),
                FieldDef::reference("Contact__c", "Contact", "Contact__r"),
                s("Survey__c"),
                FieldDef::new("Score__c", Double),
                FieldDef::new("Comment__c", Textarea),
                FieldDef::new("Submitted_At__c", Datetime),
            ],
        ),
    ]
}

/// A custom object with the standard `Name` and `OwnerId` fields.
pub fn custom_object(name: &str, key_prefix: &str, fields: Vec<FieldDef>) -> ObjectDef {
    let mut all = vec![s("Name"), FieldDef::reference("OwnerId", "User", "Owner")];
    all.extend(fields);
    ObjectDef::new(name, key_prefix, true, all)
}
