//! A campaign-day's KPI rows as one Parquet file, for Athena (the Glue table `KpiReportsTable` in
//! infra/template.yaml, over `reports/kpis/client=…/campaign=…/dt=…/` in `ReportsBucket`) and
//! anything else that reads Parquet. The figures are the rows of `kpi::fold`, as the JSON and the
//! CSV show them (ADR 0025): counts as integers, rates as exact decimals, never floats.
//!
//! One row group, Snappy pages, the columns in this order (the Glue table lists the same):
//!
//! | column | Parquet | nulls |
//! |---|---|---|
//! | `definitions_version` | INT32 | never |
//! | `catalog_versions` | BYTE_ARRAY UTF8: the versions joined with "," ("" when none) | never |
//! | `client_id`, `campaign_id` | BYTE_ARRAY UTF8 | never |
//! | `day` | INT32 DATE (the campaign-local day) | never |
//! | `grain` | BYTE_ARRAY UTF8: `day` (the campaign's total) or `agent_channel` | never |
//! | `agent_id`, `channel` | BYTE_ARRAY UTF8 | on the `day` row |
//! | `base_records` | INT64 | when no base is configured |
//! | the counts, `attempts` … `wrap_seconds` | INT64 | never |
//! | the rates, `contact_rate` … `aht_seconds` | INT64 DECIMAL(18, 4), rounded half up as `Ratio::to_fixed(4)` prints them | when the denominator is zero |
//! | `computed_at` | INT64 TIMESTAMP(MILLIS, UTC) | never |
//!
//! The partition keys are `client`, `campaign` and `dt`, so they never clash with a column.
//! Only the low-level writer of the `parquet` crate is used (no Arrow), to keep the function small.

use std::sync::Arc;

use ::parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use ::parquet::column::writer::ColumnWriter;
use ::parquet::data_type::ByteArray;
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::Type;
use backoffice_domain::kpi::{self, KpiRow, Ratio};
use time::{Date, OffsetDateTime};

/// Where the export's files live in the reports bucket: `PREFIX` + `client=…/campaign=…/dt=…/`.
pub const PREFIX: &str = "reports/kpis/";

/// The rates' decimal type: DECIMAL(18, 4), as in the Glue table.
pub const DECIMAL_PRECISION: u32 = 18;
pub const DECIMAL_SCALE: u32 = 4;

// The rates are published with kpi::DECIMALS decimals; the Parquet scale and the Glue table's
// decimal(18,4) must change with it (and so does kpi::DEFINITIONS_VERSION).
const _: () = assert!(DECIMAL_SCALE == kpi::DECIMALS);

/// The largest unscaled value of DECIMAL(18, 4): 99 999 999 999 999.9999.
const DECIMAL_MAX: u128 = 10u128.pow(DECIMAL_PRECISION) - 1;

/// 1970-01-01, day 0 of a Parquet DATE.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// `grain` of the campaign's day total (agent and channel null).
pub const GRAIN_DAY: &str = "day";
/// `grain` of a row of one agent on one channel.
pub const GRAIN_AGENT_CHANNEL: &str = "agent_channel";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{column} = {value} does not fit the column's Parquet type")]
    OutOfRange { column: &'static str, value: String },
    #[error("one file holds one campaign-day: a row of {found} among rows of {expected} (client/campaign/day)")]
    MixedPartition { expected: String, found: String },
    #[error(
        "a row has an agent or a channel but not both ({agent:?}, {channel:?}): neither a day total nor an agent × channel row"
    )]
    Grain {
        agent: Option<String>,
        channel: Option<&'static str>,
    },
    #[error("{key} = {value:?} cannot be a partition value (empty, or has '/', '=' or a control character)")]
    PartitionValue { key: &'static str, value: String },
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
}

/// The folder of one campaign-day's file: `reports/kpis/client={client}/campaign={campaign}/dt={day}/`
/// (Hive layout, what the Glue table's `storage.location.template` names). The values go in as
/// they are, as Athena's partition projection puts them, so a value that would change the path
/// (a '/', an '=', nothing at all) is refused.
pub fn partition_prefix(client_id: &str, campaign_id: &str, day: Date) -> Result<String, ExportError> {
    let segment = |key: &'static str, value: &str| {
        let bad = value.is_empty()
            || value == "."
            || value == ".."
            || value.chars().any(|c| c == '/' || c == '=' || c.is_control());
        if bad {
            Err(ExportError::PartitionValue {
                key,
                value: value.to_owned(),
            })
        } else {
            Ok(())
        }
    };
    segment("client", client_id)?;
    segment("campaign", campaign_id)?;
    Ok(format!(
        "{PREFIX}client={client_id}/campaign={campaign_id}/dt={}/",
        date_text(day)
    ))
}

/// The rows of one campaign-day (`kpi::fold`'s rows of one day: the total and the agent ×
/// channel rows) as a Parquet file, `computed_at` on every row.
///
/// Refuses rows of more than one client, campaign or day (a file is one Hive partition), a row
/// with only one of agent and channel (a rollup row, which would be counted twice beside the
/// rows it sums), and a value its column cannot hold (a count over `i64::MAX`, a rate of
/// 10^14 or more).
pub fn encode(rows: &[KpiRow], computed_at: OffsetDateTime) -> Result<Vec<u8>, ExportError> {
    if let Some(first) = rows.first() {
        let partition = |r: &KpiRow| format!("{}/{}/{}", r.client_id, r.campaign_id, date_text(r.day));
        let expected = partition(first);
        if let Some(other) = rows.iter().find(|r| partition(r) != expected) {
            return Err(ExportError::MixedPartition {
                expected,
                found: partition(other),
            });
        }
    }
    let columns = columns(rows, computed_at)?;
    let fields = columns
        .iter()
        .map(|c| c.field().map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let schema = Arc::new(Type::group_type_builder("kpi_row").with_fields(fields).build()?);
    let properties = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());

    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, properties)?;
    let mut row_group = writer.next_row_group()?;
    for column in &columns {
        let Some(mut sink) = row_group.next_column()? else {
            return Err(ParquetError::General(format!("the writer has no column for {}", column.name)).into());
        };
        column.write(sink.untyped())?;
        sink.close()?;
    }
    row_group.close()?;
    writer.close()?;
    Ok(out)
}

fn date_text(day: Date) -> String {
    format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day())
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int32,
    Date,
    Text,
    Int64,
    Decimal,
    TimestampMillis,
}

enum Cells {
    Int32(Vec<Option<i32>>),
    Int64(Vec<Option<i64>>),
    Text(Vec<Option<ByteArray>>),
}

struct Column {
    name: &'static str,
    kind: Kind,
    optional: bool,
    cells: Cells,
}

impl Column {
    fn field(&self) -> Result<Type, ParquetError> {
        let physical = match self.kind {
            Kind::Int32 | Kind::Date => PhysicalType::INT32,
            Kind::Text => PhysicalType::BYTE_ARRAY,
            Kind::Int64 | Kind::Decimal | Kind::TimestampMillis => PhysicalType::INT64,
        };
        let logical = match self.kind {
            Kind::Int32 | Kind::Int64 => None,
            Kind::Date => Some(LogicalType::Date),
            Kind::Text => Some(LogicalType::String),
            Kind::Decimal => Some(LogicalType::decimal(DECIMAL_SCALE as i32, DECIMAL_PRECISION as i32)),
            Kind::TimestampMillis => Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
        };
        let mut builder = Type::primitive_type_builder(self.name, physical)
            .with_repetition(if self.optional {
                Repetition::OPTIONAL
            } else {
                Repetition::REQUIRED
            })
            .with_logical_type(logical);
        if let Kind::Decimal = self.kind {
            builder = builder
                .with_precision(DECIMAL_PRECISION as i32)
                .with_scale(DECIMAL_SCALE as i32);
        }
        builder.build()
    }

    fn write(&self, writer: &mut ColumnWriter<'_>) -> Result<(), ParquetError> {
        match (writer, &self.cells) {
            (ColumnWriter::Int32ColumnWriter(w), Cells::Int32(cells)) => {
                let (values, levels) = self.split(cells);
                w.write_batch(&values, levels.as_deref(), None)?;
            }
            (ColumnWriter::Int64ColumnWriter(w), Cells::Int64(cells)) => {
                let (values, levels) = self.split(cells);
                w.write_batch(&values, levels.as_deref(), None)?;
            }
            (ColumnWriter::ByteArrayColumnWriter(w), Cells::Text(cells)) => {
                let (values, levels) = self.split(cells);
                w.write_batch(&values, levels.as_deref(), None)?;
            }
            _ => {
                return Err(ParquetError::General(format!(
                    "column {}: the writer's type is not the schema's",
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// The present values, and the definition levels when the column is optional (1 present,
    /// 0 null).
    fn split<T: Clone>(&self, cells: &[Option<T>]) -> (Vec<T>, Option<Vec<i16>>) {
        let values = cells.iter().flatten().cloned().collect();
        let levels = self
            .optional
            .then(|| cells.iter().map(|c| i16::from(c.is_some())).collect());
        (values, levels)
    }
}

fn int64(column: &'static str, value: u64) -> Result<i64, ExportError> {
    i64::try_from(value).map_err(|_| ExportError::OutOfRange {
        column,
        value: value.to_string(),
    })
}

fn decimal(column: &'static str, rate: Option<Ratio>) -> Result<Option<i64>, ExportError> {
    let Some(rate) = rate else { return Ok(None) };
    let scaled = rate.scaled(DECIMAL_SCALE);
    if scaled > DECIMAL_MAX {
        return Err(ExportError::OutOfRange {
            column,
            value: rate.to_fixed(DECIMAL_SCALE),
        });
    }
    i64::try_from(scaled).map(Some).map_err(|_| ExportError::OutOfRange {
        column,
        value: rate.to_fixed(DECIMAL_SCALE),
    })
}

fn grain(row: &KpiRow) -> Result<&'static str, ExportError> {
    match (&row.agent_id, row.channel) {
        (None, None) => Ok(GRAIN_DAY),
        (Some(_), Some(_)) => Ok(GRAIN_AGENT_CHANNEL),
        (agent, channel) => Err(ExportError::Grain {
            agent: agent.clone(),
            channel: channel.map(|c| c.as_str()),
        }),
    }
}

/// The columns in file order, each with its cells for every row.
fn columns(rows: &[KpiRow], computed_at: OffsetDateTime) -> Result<Vec<Column>, ExportError> {
    let text = |value: &str| Some(ByteArray::from(value));
    let required = |name: &'static str, kind: Kind, cells: Cells| Column {
        name,
        kind,
        optional: false,
        cells,
    };
    let optional = |name: &'static str, kind: Kind, cells: Cells| Column {
        name,
        kind,
        optional: true,
        cells,
    };
    let millis = computed_at.unix_timestamp_nanos().div_euclid(1_000_000);
    let computed_at = i64::try_from(millis).map_err(|_| ExportError::OutOfRange {
        column: "computed_at",
        value: computed_at.to_string(),
    })?;

    let mut columns = vec![
        required(
            "definitions_version",
            Kind::Int32,
            Cells::Int32(
                rows.iter()
                    .map(|r| {
                        i32::try_from(r.definitions_version)
                            .map(Some)
                            .map_err(|_| ExportError::OutOfRange {
                                column: "definitions_version",
                                value: r.definitions_version.to_string(),
                            })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        ),
        required(
            "catalog_versions",
            Kind::Text,
            Cells::Text(
                rows.iter()
                    .map(|r| {
                        let joined: Vec<String> = r.catalog_versions.iter().map(u32::to_string).collect();
                        text(&joined.join(","))
                    })
                    .collect(),
            ),
        ),
        required(
            "client_id",
            Kind::Text,
            Cells::Text(rows.iter().map(|r| text(&r.client_id)).collect()),
        ),
        required(
            "campaign_id",
            Kind::Text,
            Cells::Text(rows.iter().map(|r| text(&r.campaign_id)).collect()),
        ),
        required(
            "day",
            Kind::Date,
            Cells::Int32(
                rows.iter()
                    .map(|r| {
                        r.day
                            .to_julian_day()
                            .checked_sub(UNIX_EPOCH_JULIAN_DAY)
                            .map(Some)
                            .ok_or_else(|| ExportError::OutOfRange {
                                column: "day",
                                value: date_text(r.day),
                            })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        ),
        required(
            "grain",
            Kind::Text,
            Cells::Text(rows.iter().map(|r| grain(r).map(text)).collect::<Result<_, _>>()?),
        ),
        optional(
            "agent_id",
            Kind::Text,
            Cells::Text(rows.iter().map(|r| r.agent_id.as_deref().and_then(text)).collect()),
        ),
        optional(
            "channel",
            Kind::Text,
            Cells::Text(rows.iter().map(|r| r.channel.and_then(|c| text(c.as_str()))).collect()),
        ),
        optional(
            "base_records",
            Kind::Int64,
            Cells::Int64(
                rows.iter()
                    .map(|r| r.base_records.map(|b| int64("base_records", b)).transpose())
                    .collect::<Result<_, _>>()?,
            ),
        ),
    ];

    for (i, name) in kpi::Counts::NAMES.into_iter().enumerate() {
        let cells = rows
            .iter()
            .map(|r| int64(name, r.counts.values()[i]).map(Some))
            .collect::<Result<_, _>>()?;
        columns.push(required(name, Kind::Int64, Cells::Int64(cells)));
    }
    for (i, name) in kpi::Rates::NAMES.into_iter().enumerate() {
        let cells = rows
            .iter()
            .map(|r| decimal(name, r.rates.values()[i]))
            .collect::<Result<_, _>>()?;
        columns.push(optional(name, Kind::Decimal, Cells::Int64(cells)));
    }

    columns.push(required(
        "computed_at",
        Kind::TimestampMillis,
        Cells::Int64(vec![Some(computed_at); rows.len()]),
    ));
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use ::parquet::file::reader::{FileReader, SerializedFileReader};
    use ::parquet::record::Field;
    use backoffice_domain::kpi::{Counts, DEFINITIONS_VERSION, Rates};
    use backoffice_domain::tipification::Channel;
    use time::macros::{date, datetime};

    use super::*;

    fn row(agent: Option<&str>, channel: Option<Channel>, counts: Counts, base: Option<u64>) -> KpiRow {
        KpiRow {
            definitions_version: DEFINITIONS_VERSION,
            catalog_versions: vec![1, 2],
            client_id: "acme".into(),
            campaign_id: "c1".into(),
            day: date!(2026 - 12 - 01),
            agent_id: agent.map(str::to_owned),
            channel,
            base_records: base,
            rates: Rates::of(&counts, base),
            counts,
        }
    }

    fn counts() -> Counts {
        Counts {
            attempts: 3,
            contacts: 3,
            effective: 3,
            non_effective: 0,
            no_contact: 0,
            presales: 1,
            verified_sales: 1,
            handled: 2,
            talk_seconds: 270,
            hold_seconds: 30,
            wrap_seconds: 60,
        }
    }

    /// The file read back with the crate's own record reader, as (column, value as text) rows.
    fn read_back(label: &str, bytes: &[u8]) -> (String, Vec<Vec<(String, String)>>) {
        let path = std::env::temp_dir().join(format!("kpi-parquet-{}-{label}.parquet", std::process::id()));
        std::fs::write(&path, bytes).expect("write");
        let reader = SerializedFileReader::try_from(std::fs::File::open(&path).expect("open")).expect("a Parquet file");
        let metadata = reader.metadata();
        assert_eq!(metadata.num_row_groups(), 1);
        let mut schema = Vec::new();
        ::parquet::schema::printer::print_schema(&mut schema, metadata.file_metadata().schema());
        let rows = reader
            .get_row_iter(None)
            .expect("rows")
            .map(|row| {
                row.expect("a row")
                    .get_column_iter()
                    .map(|(name, field)| {
                        let text = match field {
                            Field::Null => "null".to_owned(),
                            Field::Str(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (name.clone(), text)
                    })
                    .collect()
            })
            .collect();
        std::fs::remove_file(&path).ok();
        (String::from_utf8(schema).expect("utf-8"), rows)
    }

    #[test]
    fn rows_read_back_with_their_types_counts_and_exact_rates() {
        let mut no_base_no_talk = counts();
        no_base_no_talk.talk_seconds = 0;
        no_base_no_talk.handled = 0;
        let rows = vec![
            row(None, None, counts(), Some(1000)),
            row(Some("ana"), Some(Channel::Whatsapp), no_base_no_talk, None),
        ];
        let bytes = encode(&rows, datetime!(2026-12-02 05:10:00.123456 UTC)).expect("encoded");
        assert_eq!(&bytes[..4], b"PAR1");
        let (schema, read) = read_back("rows", &bytes);
        for line in [
            "REQUIRED INT32 definitions_version;",
            "REQUIRED BYTE_ARRAY catalog_versions (STRING);",
            "REQUIRED INT32 day (DATE);",
            "OPTIONAL BYTE_ARRAY agent_id (STRING);",
            "OPTIONAL INT64 base_records;",
            "REQUIRED INT64 attempts;",
            "OPTIONAL INT64 contact_rate (DECIMAL(18,4));",
            "REQUIRED INT64 computed_at (TIMESTAMP(MILLIS,true));",
        ] {
            assert!(schema.contains(line), "{line} in\n{schema}");
        }
        let names: Vec<&str> = read[0].iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 30);
        assert_eq!(
            names[..9],
            [
                "definitions_version",
                "catalog_versions",
                "client_id",
                "campaign_id",
                "day",
                "grain",
                "agent_id",
                "channel",
                "base_records"
            ]
        );
        assert_eq!(names[29], "computed_at");
        let get = |row: usize, name: &str| {
            read[row]
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(get(0, "catalog_versions"), "1,2");
        assert_eq!(get(0, "day"), "2026-12-01");
        assert_eq!(get(0, "grain"), "day");
        assert_eq!(get(0, "agent_id"), "null");
        assert_eq!(get(0, "base_records"), "1000");
        assert_eq!(get(0, "talk_seconds"), "270");
        assert_eq!(get(0, "penetration"), "0.0010");
        assert_eq!(get(0, "presales_per_talk_hour"), "13.3333");
        assert_eq!(get(0, "aht_seconds"), "180.0000");
        assert!(
            get(0, "computed_at").contains("05:10:00.123"),
            "{}",
            get(0, "computed_at")
        );
        assert_eq!(get(1, "grain"), "agent_channel");
        assert_eq!(get(1, "agent_id"), "ana");
        assert_eq!(get(1, "channel"), "whatsapp");
        assert_eq!(get(1, "base_records"), "null");
        assert_eq!(get(1, "penetration"), "null", "no base: null");
        assert_eq!(get(1, "aht_seconds"), "null", "nothing handled: null, not 0");
        assert_eq!(get(1, "contact_rate"), "1.0000");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(get(i, "attempts"), r.counts.attempts.to_string());
            assert_eq!(
                get(i, "effective_rate"),
                r.rates.effective_rate.map_or("null".into(), |x| x.to_fixed(4))
            );
        }
    }

    #[test]
    fn an_empty_day_is_a_file_without_rows() {
        let bytes = encode(&[], datetime!(2026-12-02 05:10 UTC)).expect("encoded");
        let (schema, rows) = read_back("empty", &bytes);
        assert!(schema.contains("computed_at"));
        assert!(rows.is_empty());
    }

    #[test]
    fn values_a_column_cannot_hold_are_errors_not_panics() {
        let mut huge = counts();
        huge.attempts = u64::MAX;
        let err = encode(&[row(None, None, huge, None)], datetime!(2026-12-02 05:10 UTC));
        assert!(
            matches!(err, Err(ExportError::OutOfRange { column: "attempts", .. })),
            "{err:?}"
        );

        // 10^14 is the first rate DECIMAL(18, 4) cannot hold; just below it fits.
        let mut fast = counts();
        fast.presales = 100_000_000_000_000 / 3600 + 1;
        fast.talk_seconds = 1;
        let err = encode(&[row(None, None, fast, None)], datetime!(2026-12-02 05:10 UTC));
        assert!(
            matches!(
                err,
                Err(ExportError::OutOfRange {
                    column: "presales_per_talk_hour",
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(decimal("x", Ratio::new(999_999_999_999_999_999, 10_000)).is_ok());
        assert!(decimal("x", Ratio::new(100_000_000_000_000, 1)).is_err());
        assert!(decimal("x", Ratio::new(u64::MAX, 1)).is_err());
    }

    #[test]
    fn one_file_is_one_campaign_day_of_day_and_agent_channel_rows() {
        let mut other_day = row(Some("ana"), Some(Channel::Call), counts(), None);
        other_day.day = date!(2026 - 12 - 02);
        let err = encode(
            &[row(None, None, counts(), None), other_day],
            datetime!(2026-12-02 05:10 UTC),
        );
        assert!(matches!(err, Err(ExportError::MixedPartition { .. })), "{err:?}");
        let rollup = row(Some("ana"), None, counts(), None);
        let err = encode(&[rollup], datetime!(2026-12-02 05:10 UTC));
        assert!(matches!(err, Err(ExportError::Grain { .. })), "{err:?}");
    }

    #[test]
    fn the_partition_folder_is_hive_style_and_refuses_path_tricks() {
        assert_eq!(
            partition_prefix("acme", "c1", date!(2026 - 12 - 01)).ok().as_deref(),
            Some("reports/kpis/client=acme/campaign=c1/dt=2026-12-01/")
        );
        for bad in ["", ".", "..", "a/b", "a=b", "a\nb"] {
            assert!(partition_prefix(bad, "c1", date!(2026 - 12 - 01)).is_err(), "{bad:?}");
            assert!(partition_prefix("acme", bad, date!(2026 - 12 - 01)).is_err(), "{bad:?}");
        }
    }
}
