//! What objects and fields the simulated org has:
//! the standard objects (Account, Contact, Case, Asset, User) plus custom objects and
//! fields declared in a JSON schema file (`--schema FILE`, format in docs/simulator.md).
//!
//! Data only: whether a record body fits is `validate.rs`'s. No storage, no HTTP.

use serde_json::{Map, Value};

use crate::ids;

/// A field's data type, as `describe` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Id,
    String,
    Boolean,
    Int,
    Double,
    DateTime,
    Reference,
}

impl FieldType {
    fn parse(name: &str) -> Option<FieldType> {
        Some(match name {
            "id" => FieldType::Id,
            "string" => FieldType::String,
            "boolean" => FieldType::Boolean,
            "int" => FieldType::Int,
            "double" => FieldType::Double,
            "datetime" => FieldType::DateTime,
            "reference" => FieldType::Reference,
            _ => return None,
        })
    }

    /// The name `describe` gives the type.
    pub fn describe_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::DateTime => "datetime",
            FieldType::Reference => "reference",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub kind: FieldType,
    /// Must have a value on create, and cannot be set to null.
    pub required: bool,
    /// Maximum length of a string; 0 for other types.
    pub length: usize,
    pub external_id: bool,
    /// No two live records may share the value (`DUPLICATE_VALUE` on create).
    pub unique: bool,
    /// Objects a reference field may point at.
    pub reference_to: Vec<String>,
    /// False for Id, the audit fields and computed names.
    pub writable: bool,
}

impl Field {
    fn new(name: &str, kind: FieldType) -> Field {
        Field {
            name: name.to_string(),
            label: label_of(name),
            kind,
            required: false,
            length: if kind == FieldType::String { 255 } else { 0 },
            external_id: false,
            unique: false,
            reference_to: Vec::new(),
            writable: true,
        }
    }

    fn string(name: &str, length: usize) -> Field {
        Field {
            length,
            ..Field::new(name, FieldType::String)
        }
    }

    fn required(mut self) -> Field {
        self.required = true;
        self
    }

    fn read_only(mut self) -> Field {
        self.writable = false;
        self
    }

    fn reference(name: &str, to: &str) -> Field {
        Field {
            reference_to: vec![to.to_string()],
            ..Field::new(name, FieldType::Reference)
        }
    }

    pub fn custom(&self) -> bool {
        self.name.ends_with("__c")
    }
}

#[derive(Clone, Debug)]
pub struct Object {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    pub key_prefix: String,
    pub custom: bool,
    /// A platform event (`…__e`): published by insert only, never read back, changed,
    /// upserted or deleted through the API.
    pub platform_event: bool,
    pub fields: Vec<Field>,
}

impl Object {
    /// The field of that name, ignoring case as Salesforce does.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// Every object of the simulated org.
#[derive(Clone, Debug)]
pub struct Schema {
    pub objects: Vec<Object>,
}

impl Default for Schema {
    /// The standard objects only.
    fn default() -> Self {
        Schema {
            objects: standard_objects(),
        }
    }
}

impl Schema {
    /// The standard objects plus the objects and fields of a schema file (see
    /// docs/simulator.md): an entry named like a standard object adds fields to it.
    pub fn from_json(text: &str) -> Result<Schema, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let entries = value
            .get("objects")
            .and_then(Value::as_array)
            .ok_or("expected {\"objects\": [...]}")?;
        let mut schema = Schema::default();
        let (mut customs, mut events) = (0, 0);
        for entry in entries {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| valid_name(n))
                .ok_or("every object needs a \"name\" of letters, digits and _")?;
            let fields = entry
                .get("fields")
                .and_then(Value::as_array)
                .map(|fields| {
                    fields
                        .iter()
                        .map(parse_field)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            if let Some(object) = schema
                .objects
                .iter_mut()
                .find(|o| o.name.eq_ignore_ascii_case(name))
            {
                for field in fields {
                    if object.field(&field.name).is_some() {
                        return Err(format!("{name}.{} is declared twice", field.name));
                    }
                    object.fields.push(field);
                }
                continue;
            }
            let platform_event = name.ends_with("__e");
            if !name.ends_with("__c") && !platform_event {
                return Err(format!(
                    "{name}: a new object's name must end in __c, or __e for a platform event (standard ones are Account, Contact, Case, Asset, User)"
                ));
            }
            if platform_event && let Some(field) = fields.iter().find(|f| f.external_id || f.unique)
            {
                return Err(format!(
                    "{name}.{}: a platform event has no external id or unique fields",
                    field.name
                ));
            }
            let label = entry
                .get("label")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| label_of(name));
            // Event publish results carry ids starting e00 (the platform events guide's
            // examples: `e00xx000000000B`, `e01xx0000000001AAA`).
            let key_prefix = match platform_event {
                true => ids::event_prefix(events),
                false => ids::custom_prefix(customs),
            };
            let mut object = Object {
                label_plural: format!("{label}s"),
                label,
                name: name.to_string(),
                key_prefix,
                custom: true,
                platform_event,
                fields: system_fields(),
            };
            match platform_event {
                true => events += 1,
                false => customs += 1,
            }
            // Custom objects have a Name; platform events have none.
            if !platform_event && !fields.iter().any(|f| f.name == "Name") {
                object.fields.push(Field::string("Name", 80).required());
            }
            object.fields.extend(fields);
            schema.objects.push(object);
        }
        Ok(schema)
    }

    /// Adds `field` (a schema file's field entry) to `object`.
    pub fn add_field(&mut self, object: &str, field: &Value) -> Result<(), String> {
        let field = parse_field(field)?;
        let target = self
            .objects
            .iter_mut()
            .find(|o| o.name.eq_ignore_ascii_case(object))
            .ok_or_else(|| format!("{object}: no such object"))?;
        if target.field(&field.name).is_some() {
            return Err(format!("{object}.{} exists already", field.name));
        }
        target.fields.push(field);
        Ok(())
    }

    /// The object of that name, ignoring case.
    pub fn object(&self, name: &str) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    /// The object an id belongs to, by its key prefix.
    pub fn object_of_id(&self, id: &str) -> Option<&Object> {
        let prefix = id.get(..3)?;
        self.objects.iter().find(|o| o.key_prefix == prefix)
    }
}

fn parse_field(entry: &Value) -> Result<Field, String> {
    let name = entry
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| valid_name(n))
        .ok_or("every field needs a \"name\" of letters, digits and _")?;
    let type_name = entry
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let kind = FieldType::parse(type_name).ok_or_else(|| {
        format!("{name}: type {type_name:?} is not one of string, boolean, int, double, datetime, reference, id")
    })?;
    let mut field = Field::new(name, kind);
    if let Some(label) = entry.get("label").and_then(Value::as_str) {
        field.label = label.to_string();
    }
    if let Some(length) = entry.get("length") {
        field.length = length
            .as_u64()
            .filter(|n| (1..=131_072).contains(n))
            .ok_or_else(|| format!("{name}: length must be 1 to 131072"))?
            as usize;
    }
    field.required = entry
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    field.external_id = entry
        .get("externalId")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    field.unique = entry
        .get("unique")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if (field.external_id || field.unique)
        && !matches!(kind, FieldType::String | FieldType::Int | FieldType::Double)
    {
        return Err(format!(
            "{name}: an external id or unique field must be a string, int or double"
        ));
    }
    if kind == FieldType::Reference {
        let to = entry
            .get("referenceTo")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name}: a reference needs \"referenceTo\": \"Object\""))?;
        field.reference_to = vec![to.to_string()];
    }
    Ok(field)
}

fn valid_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 80
}

/// `Serial_Number__c` -> `Serial Number`.
fn label_of(name: &str) -> String {
    name.trim_end_matches("__c").replace('_', " ")
}

/// Fields every object has; none is writable.
fn system_fields() -> Vec<Field> {
    vec![
        Field::new("Id", FieldType::Id).read_only(),
        Field::new("IsDeleted", FieldType::Boolean).read_only(),
        Field::new("CreatedDate", FieldType::DateTime).read_only(),
        Field::new("LastModifiedDate", FieldType::DateTime).read_only(),
        Field::new("SystemModstamp", FieldType::DateTime).read_only(),
    ]
}

fn standard(name: &str, prefix: &str, plural: &str, fields: Vec<Field>) -> Object {
    let mut all = system_fields();
    all.extend(fields);
    Object {
        name: name.to_string(),
        label: name.to_string(),
        label_plural: plural.to_string(),
        key_prefix: prefix.to_string(),
        custom: false,
        platform_event: false,
        fields: all,
    }
}

/// A working subset of each standard object's fields.
fn standard_objects() -> Vec<Object> {
    vec![
        standard(
            "Account",
            "001",
            "Accounts",
            vec![
                Field::string("Name", 255).required(),
                Field::string("AccountNumber", 40),
                Field::string("Type", 255),
                Field::string("Industry", 255),
                Field::string("Phone", 40),
                Field::string("Website", 255),
                Field::string("Description", 32000),
                Field::new("NumberOfEmployees", FieldType::Int),
                Field::new("AnnualRevenue", FieldType::Double),
            ],
        ),
        standard(
            "Contact",
            "003",
            "Contacts",
            vec![
                Field::string("FirstName", 40),
                Field::string("LastName", 80).required(),
                Field::string("Name", 121).read_only(),
                Field::string("Email", 80),
                Field::string("Phone", 40),
                Field::reference("AccountId", "Account"),
            ],
        ),
        standard(
            "Case",
            "500",
            "Cases",
            vec![
                Field::string("Subject", 255),
                Field::string("Description", 32000),
                Field::string("Status", 255),
                Field::string("Origin", 255),
                Field::string("Priority", 255),
                Field::reference("AccountId", "Account"),
                Field::reference("ContactId", "Contact"),
                Field::reference("AssetId", "Asset"),
            ],
        ),
        standard(
            "Asset",
            "02i",
            "Assets",
            vec![
                Field::string("Name", 255).required(),
                Field::string("SerialNumber", 80),
                Field::string("Status", 255),
                Field::string("Description", 32000),
                Field::reference("AccountId", "Account"),
                Field::reference("ContactId", "Contact"),
            ],
        ),
        standard(
            "User",
            "005",
            "Users",
            vec![
                Field::string("Username", 80).required(),
                Field::string("FirstName", 40),
                Field::string("LastName", 80).required(),
                Field::string("Name", 121).read_only(),
                Field::string("Email", 128).required(),
                Field::string("Alias", 8),
                Field::new("IsActive", FieldType::Boolean),
            ],
        ),
    ]
}

/// `Name` for objects whose name is computed from first and last names.
pub fn computed_name(object: &Object, fields: &Map<String, Value>) -> Option<String> {
    if !matches!(object.name.as_str(), "Contact" | "User") {
        return None;
    }
    let part = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("");
    let name = format!("{} {}", part("FirstName"), part("LastName"));
    Some(name.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_json(
            r#"{"objects":[
                {"name":"Device__c","fields":[
                    {"name":"Serial__c","type":"string","length":8,"required":true,"externalId":true},
                    {"name":"Online__c","type":"boolean"},
                    {"name":"Account__c","type":"reference","referenceTo":"Account"}]},
                {"name":"Account","fields":[{"name":"Fleet_Id__c","externalId":true,"length":20}]}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_schema_file_adds_objects_and_fields() {
        let schema = schema();
        let device = schema.object("device__C").unwrap();
        assert_eq!(device.key_prefix, "a00");
        assert!(device.field("Name").unwrap().required);
        assert!(
            schema
                .object("Account")
                .unwrap()
                .field("Fleet_Id__c")
                .unwrap()
                .external_id
        );
        assert!(Schema::from_json(r#"{"objects":[{"name":"Device"}]}"#).is_err());
        let events = Schema::from_json(
            r#"{"objects":[{"name":"Alarm__e","fields":[{"name":"Code__c","length":40}]}]}"#,
        )
        .unwrap();
        let alarm = events.object("alarm__e").unwrap();
        assert!(alarm.platform_event && alarm.field("Name").is_none());
        assert_eq!(alarm.key_prefix, "e00");
        assert!(
            Schema::from_json(
                r#"{"objects":[{"name":"A__e","fields":[{"name":"K__c","externalId":true}]}]}"#
            )
            .is_err()
        );
        assert!(
            Schema::from_json(
                r#"{"objects":[{"name":"X__c","fields":[{"name":"a","type":"blob"}]}]}"#
            )
            .is_err()
        );
    }
}
