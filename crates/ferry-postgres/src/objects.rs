//! PostgreSQL objects other than tables, as another PostgreSQL database recreates them, from
//! the catalogs' own definitions (`pg_get_functiondef`, `pg_get_viewdef`, `pg_get_triggerdef`).
//!
//! Order (the rule): free sequences, then functions and procedures, come before the tables,
//! their bodies unchecked as pg_dump does (`check_function_bodies = off`), so that anything
//! may call them; a function whose signature names a table's row type needs that table, and a
//! SQL-standard body (`BEGIN ATOMIC`, PostgreSQL 14+) is checked whatever the setting, so those
//! come after the data. After the data, keys and counters: those functions, then views and
//! materialized views parents first (by `pg_depend` on their rewrite rules; a materialized
//! view is created empty and refreshed over the copied rows, then indexed), then triggers
//! (which therefore never fire during the copy), then comments. A view or trigger reading a
//! table the filter left out is named as not copied instead of failing.

use std::collections::{BTreeMap, HashSet};

use ferry_core::Result;
use ferry_core::schema::{NativeObject, ObjectPhase, SkippedObject};
use tokio_postgres::Client;

use crate::connect::error;
use crate::dialect::{literal, quote};

/// Drops `schema.` after `keyword` (the catalogs qualify names outside the search path, and
/// the target's schema may be another): `ON public.t` → `ON t`.
fn unqualify(sql: &str, keyword: &str, schema: &str) -> String {
    sql.replacen(&format!("{keyword}{schema}."), keyword, 1)
}

/// Every object of the current schema; `tables` are the tables copied.
///
/// # Errors
/// When the catalogs cannot be read.
pub async fn discover(
    client: &Client,
    tables: &[String],
) -> Result<(Vec<NativeObject>, Vec<SkippedObject>)> {
    let q = |e: tokio_postgres::Error| error(&e);
    let schema: String = client
        .query_one("SELECT quote_ident(current_schema())", &[])
        .await
        .map_err(q)?
        .get(0);
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut skipped = Vec::new();

    for r in client
        .query(
            "SELECT s.sequencename::text, format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, \
             q.seqmax, q.seqstart, q.seqcache, q.seqcycle, s.last_value \
             FROM pg_sequences s JOIN pg_namespace n ON n.nspname = s.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename \
             JOIN pg_sequence q ON q.seqrelid = c.oid \
             WHERE s.schemaname = current_schema() AND NOT EXISTS (SELECT 1 FROM pg_depend d \
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid \
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) ORDER BY c.oid",
            &[],
        )
        .await
        .map_err(q)?
    {
        let name: String = r.get(0);
        let mut create = vec![format!(
            "CREATE SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {}{}",
            quote(&name),
            r.get::<_, String>(1),
            r.get::<_, i64>(2),
            r.get::<_, i64>(3),
            r.get::<_, i64>(4),
            r.get::<_, i64>(5),
            r.get::<_, i64>(6),
            if r.get(7) { " CYCLE" } else { " NO CYCLE" }
        )];
        // The value it had when read, so the next nextval() continues where the source was.
        if let Some(last) = r.get::<_, Option<i64>>(8) {
            create.push(format!(
                "SELECT setval({}, {last}, true)",
                literal(&quote(&name))
            ));
        }
        before.push(NativeObject::new(
            "sequence",
            &name,
            None,
            ObjectPhase::BeforeTables,
            create,
            vec![format!("DROP SEQUENCE IF EXISTS {} CASCADE", quote(&name))],
        ));
    }

    let mut late_functions = Vec::new();
    for r in client
        .query(
            "SELECT p.proname::text, pg_get_function_identity_arguments(p.oid), p.prokind::text, \
             CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END, \
             EXISTS (SELECT 1 FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]) || p.prorettype) a(t) \
             JOIN pg_type y ON y.oid = a.t WHERE y.typrelid <> 0) \
             OR (to_jsonb(p) ->> 'prosqlbody') IS NOT NULL, \
             obj_description(p.oid, 'pg_proc') \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = current_schema() AND NOT EXISTS (SELECT 1 FROM pg_depend d \
             WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e') \
             ORDER BY p.oid",
            &[],
        )
        .await
        .map_err(q)?
    {
        let name: String = r.get(0);
        let args: String = r.get(1);
        let label = format!("{name}({args})");
        let (kind, keyword) = match r.get::<_, String>(2).as_str() {
            "f" => ("function", "FUNCTION"),
            "p" => ("procedure", "PROCEDURE"),
            other => {
                let what = if other == "a" { "aggregate" } else { "window function" };
                skipped.push(SkippedObject::new(
                    what,
                    &label,
                    "aggregates and window functions are not recreated; create them on the target".into(),
                ));
                continue;
            }
        };
        let def: String = r.get::<_, Option<String>>(3).unwrap_or_default();
        let def = unqualify(&def, &format!("{keyword} "), &schema);
        let drop = vec![format!(
            "DROP {keyword} IF EXISTS {}({args}) CASCADE",
            quote(&name)
        )];
        // The function's comment travels with it.
        let comment = r.get::<_, Option<String>>(5).map(|text| {
            format!(
                "COMMENT ON {keyword} {}({args}) IS {}",
                quote(&name),
                literal(&text)
            )
        });
        if r.get(4) {
            late_functions.push(NativeObject::new(
                kind,
                &label,
                None,
                ObjectPhase::AfterData,
                std::iter::once(def).chain(comment).collect(),
                drop,
            ));
        } else {
            before.push(NativeObject::new(
                kind,
                &label,
                None,
                ObjectPhase::BeforeTables,
                std::iter::once(format!("SET check_function_bodies = off; {def}"))
                    .chain(comment)
                    .collect(),
                drop,
            ));
        }
    }
    after.extend(late_functions);

    // Views and materialized views, parents first.
    struct View {
        materialized: bool,
        create: String,
        populated: bool,
        reads: Vec<String>,
        indexes: Vec<String>,
    }
    let mut views: BTreeMap<String, View> = BTreeMap::new();
    for r in client
        .query(
            "SELECT c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid), \
             coalesce(array_to_string(c.reloptions, ', '), ''), c.relispopulated, \
             array(SELECT DISTINCT x.relname::text FROM pg_rewrite w JOIN pg_depend d \
             ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass \
             JOIN pg_class x ON x.oid = d.refobjid WHERE w.ev_class = c.oid AND x.oid <> c.oid \
             AND x.relnamespace = c.relnamespace AND x.relkind IN ('r', 'p', 'v', 'm', 'f')), \
             array(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid ORDER BY i.indexrelid) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm') ORDER BY c.oid",
            &[],
        )
        .await
        .map_err(q)?
    {
        let name: String = r.get(0);
        let materialized: bool = r.get(1);
        let def = r.get::<_, String>(2);
        let def = def.trim().trim_end_matches(';');
        let options: String = r.get(3);
        let with = if options.is_empty() {
            String::new()
        } else {
            format!(" WITH ({options})")
        };
        let create = if materialized {
            format!(
                "CREATE MATERIALIZED VIEW {}{with} AS\n{def}\nWITH NO DATA",
                quote(&name)
            )
        } else {
            format!("CREATE VIEW {}{with} AS\n{def}", quote(&name))
        };
        views.insert(
            name,
            View {
                materialized,
                create,
                populated: r.get(4),
                reads: r.get(5),
                indexes: r.get(6),
            },
        );
    }
    let (order, _) = ferry_core::plan::dependency_order(
        views
            .iter()
            .map(|(n, v)| (n.as_str(), v.reads.iter().map(String::as_str))),
    );
    // What a view may read on the target: copied tables and views recreated before it.
    let mut present: HashSet<String> = tables.iter().cloned().collect();
    for name in order {
        let Some(v) = views.get(&name) else { continue };
        let kind = if v.materialized {
            "materialized view"
        } else {
            "view"
        };
        if let Some(missing) = v.reads.iter().find(|r| !present.contains(*r)) {
            skipped.push(SkippedObject::new(
                kind,
                &name,
                format!("it reads \"{missing}\", which is not copied"),
            ));
            continue;
        }
        let mut create = vec![v.create.clone()];
        if v.materialized {
            create.extend(v.indexes.iter().map(|i| unqualify(i, " ON ", &schema)));
            if v.populated {
                create.push(format!("REFRESH MATERIALIZED VIEW {}", quote(&name)));
            }
        }
        let drop = format!(
            "DROP {} IF EXISTS {} CASCADE",
            kind.to_uppercase(),
            quote(&name)
        );
        after.push(NativeObject::new(
            kind,
            &name,
            None,
            ObjectPhase::AfterData,
            create,
            vec![drop],
        ));
        present.insert(name);
    }

    for r in client
        .query(
            "SELECT t.tgname::text, c.relname::text, c.relkind::text, pg_get_triggerdef(t.oid), t.tgenabled::text \
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND NOT t.tgisinternal ORDER BY c.relname, t.tgname",
            &[],
        )
        .await
        .map_err(q)?
    {
        let (name, on): (String, String) = (r.get(0), r.get(1));
        let label = format!("{name} on {on}");
        if !present.contains(&on) {
            skipped.push(SkippedObject::new(
                "trigger",
                &label,
                format!("its table \"{on}\" is not copied"),
            ));
            continue;
        }
        let def = unqualify(&r.get::<_, String>(3), " ON ", &schema);
        let def = unqualify(&def, "EXECUTE FUNCTION ", &schema);
        let def = unqualify(&def, "EXECUTE PROCEDURE ", &schema);
        let mut create = vec![def];
        if r.get::<_, String>(4) == "D" {
            create.push(format!(
                "ALTER TABLE {} DISABLE TRIGGER {}",
                quote(&on),
                quote(&name)
            ));
        }
        // A trigger on a view goes with the view; on a table, with the table's filter.
        let table = (r.get::<_, String>(2) != "v" && r.get::<_, String>(2) != "m").then_some(on);
        after.push(NativeObject::new(
            "trigger",
            &label,
            table,
            ObjectPhase::AfterData,
            create,
            Vec::new(),
        ));
    }

    let mut comments: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
    for r in client
        .query(
            "SELECT c.relname::text, c.relkind::text, a.attname::text, d.description \
             FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0 \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') \
             ORDER BY c.relname, d.objsubid",
            &[],
        )
        .await
        .map_err(q)?
    {
        let (rel, relkind): (String, String) = (r.get(0), r.get(1));
        if !present.contains(&rel) {
            continue; // Its table or view is named as not copied already.
        }
        let what = match relkind.as_str() {
            "v" => "VIEW",
            "m" => "MATERIALIZED VIEW",
            _ => "TABLE",
        };
        let text = literal(&r.get::<_, String>(3));
        let sql = match r.get::<_, Option<String>>(2) {
            Some(col) => format!("COMMENT ON COLUMN {}.{} IS {text}", quote(&rel), quote(&col)),
            None => format!("COMMENT ON {what} {} IS {text}", quote(&rel)),
        };
        let entry = comments
            .entry(rel)
            .or_insert_with(|| (what == "TABLE", Vec::new()));
        entry.1.push(sql);
    }
    for (rel, (is_table, create)) in comments {
        after.push(NativeObject::new(
            "comments",
            &format!("on {rel}"),
            is_table.then(|| rel.clone()),
            ObjectPhase::AfterData,
            create,
            Vec::new(),
        ));
    }

    before.extend(after);
    Ok((before, skipped))
}
