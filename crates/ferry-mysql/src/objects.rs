//! MySQL/MariaDB views and triggers, as another MySQL/MariaDB database recreates them after the
//! data. Built from `information_schema` rather than `SHOW CREATE`, so no `DEFINER` travels (the
//! target's user defines them; a view keeps its `SQL SECURITY`), and the source database's name
//! is taken out of view definitions (MySQL writes `` `db`.`table` ``). Views come parents first
//! (a view names the views it reads in its definition); a view reading a table the filter left
//! out, and a trigger on one, are named as not copied. Triggers keep their order per event.

use std::collections::BTreeMap;

use ferry_core::Result;
use ferry_core::schema::{NativeObject, ObjectPhase, SkippedObject};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::connect::{error, quote};

/// A view or trigger, recreated from its statement after the data.
fn object(
    kind: &str,
    name: &str,
    table: Option<String>,
    create: String,
    drop: Vec<String>,
) -> NativeObject {
    NativeObject::new(
        kind,
        name,
        table,
        ObjectPhase::AfterData,
        vec![create],
        drop,
    )
}

/// Views and triggers of the connection's database; `copied` are the tables copied, `all`
/// every base table of the database.
///
/// # Errors
/// When `information_schema` cannot be read.
pub async fn discover(
    conn: &mut Conn,
    copied: &[String],
    all: &[String],
) -> Result<(Vec<NativeObject>, Vec<SkippedObject>)> {
    let db: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .await
        .map_err(|e| error(&e))?;
    let prefix = format!("{}.", quote(&db.unwrap_or_default()));
    let mut objects = Vec::new();
    let mut skipped = Vec::new();

    let rows: Vec<(String, String, String, String)> = conn
        .query(
            "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE FROM information_schema.VIEWS \
             WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
        )
        .await
        .map_err(|e| error(&e))?;
    let views: BTreeMap<String, (String, String, String)> = rows
        .into_iter()
        .map(|(n, def, check, security)| (n, (def.replace(&prefix, ""), check, security)))
        .collect();
    let reads = |def: &str, names: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        names.filter(|n| def.contains(&quote(n))).cloned().collect()
    };
    let (order, _) = ferry_core::plan::dependency_order(views.iter().map(|(n, (def, _, _))| {
        let deps: Vec<&str> = views
            .keys()
            .filter(|v| *v != n && def.contains(&quote(v)))
            .map(String::as_str)
            .collect();
        (n.as_str(), deps)
    }));
    let mut skipped_views: Vec<String> = Vec::new();
    for name in order {
        let Some((def, check, security)) = views.get(&name) else {
            continue;
        };
        let missing = reads(def, &mut all.iter().filter(|t| !copied.contains(t)))
            .into_iter()
            .chain(reads(def, &mut skipped_views.iter()))
            .next();
        if let Some(missing) = missing {
            skipped.push(SkippedObject::new(
                "view",
                &name,
                format!("it reads \"{missing}\", which is not copied"),
            ));
            skipped_views.push(name);
            continue;
        }
        let check = match check.as_str() {
            "CASCADED" | "LOCAL" => format!(" WITH {check} CHECK OPTION"),
            _ => String::new(),
        };
        objects.push(object(
            "view",
            &name,
            None,
            format!(
                "CREATE SQL SECURITY {security} VIEW {} AS {def}{check}",
                quote(&name)
            ),
            vec![format!("DROP VIEW IF EXISTS {}", quote(&name))],
        ));
    }

    let triggers: Vec<(String, String, String, String, String)> = conn
        .query(
            "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_STATEMENT \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
        )
        .await
        .map_err(|e| error(&e))?;
    for (name, timing, event, table, statement) in triggers {
        objects.push(object(
            "trigger",
            &name,
            Some(table.clone()),
            format!(
                "CREATE TRIGGER {} {timing} {event} ON {} FOR EACH ROW {statement}",
                quote(&name),
                quote(&table)
            ),
            Vec::new(),
        ));
    }
    Ok((objects, skipped))
}
