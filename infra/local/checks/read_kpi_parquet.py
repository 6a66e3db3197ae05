#!/usr/bin/env python3
"""Reads the KPI Parquet export (issue 16) with two third-party readers, pyarrow and DuckDB
(PyPI, pinned in infra/local/requirements.txt), holds both against the Glue table that Athena
queries (infra/template.yaml) and against each other, and prints the rows as JSON, so a Rust
test can compare our figures with someone else's reading of the files we write.

    read_kpi_parquet.py ROOT --template infra/template.yaml [--table KpiReportsTable]

ROOT is laid out as the reports bucket: the table's location below the bucket (from the
template's `StorageDescriptor.Location`, `reports/kpis/`), then one Hive folder per partition
key (from `PartitionKeys`: `client=…/campaign=…/dt=YYYY-MM-DD/`), then `*.parquet` files.

Checks, each a clear message on stderr and exit 1 when it fails:
  * the table: Parquet SerDe and input/output formats, partition projection on, and
    `storage.location.template` = the location + `key=${key}/` for each partition key, in order;
  * every file, read by pyarrow: its columns are the table's `Columns`, same names, same order,
    each of the type Glue names (int, bigint, string, date, decimal(p,s), timestamp; a timestamp
    in milliseconds adjusted to UTC); its `client_id`, `campaign_id` and `day` are the values of
    its partition folders;
  * the same folder read by DuckDB, `read_parquet(…, hive_partitioning = true)` with the
    partition keys typed as in the table: the same column types, and the same rows, value by
    value, file by file and row by row.

Prints one JSON list, a row an object, in file order (by path, then row): every column by its
name, decimals as strings with their scale ("0.3333"), dates as "YYYY-MM-DD", timestamps as
RFC 3339 in UTC with milliseconds ("2026-12-02T05:10:00.123Z"), nulls as null, integers as
numbers; then the partition values `client`, `campaign` and `dt` (dt as "YYYY-MM-DD"), and
`file` (the path below ROOT). Exit 2 when the arguments, the template or the folder cannot be
used (no table, no file).
"""
from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
DECIMAL_TYPE = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class Mismatch(Exception):
    """A reader, the table or the files disagree: exit 1."""


class Unusable(Exception):
    """The arguments, the template or the folder cannot be used: exit 2."""


# --------------------------------------------------------------------------------------------
# The template: PyYAML's safe loader reads no CloudFormation tag, so each is kept as its text
# (`!Sub "s3://${ReportsBucket}/reports/kpis/"` is that string; `!Ref X` is "X"), except that a
# !Sub's `${!name}` is the literal `${name}`, as CloudFormation writes it.
# --------------------------------------------------------------------------------------------


class TemplateLoader(yaml.SafeLoader):
    pass


def _keep_tag(loader: TemplateLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        text = loader.construct_scalar(node)
        return text.replace("${!", "${") if suffix == "Sub" else text
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


TemplateLoader.add_multi_constructor("!", _keep_tag)


def glue_table(template: Path, logical_id: str) -> dict[str, Any]:
    try:
        with template.open(encoding="utf-8") as f:
            document = yaml.load(f, Loader=TemplateLoader)  # noqa: S506 - a SafeLoader
    except (OSError, yaml.YAMLError) as e:
        raise Unusable(f"{template}: cannot read the template: {e}") from e
    resource = ((document or {}).get("Resources") or {}).get(logical_id) or {}
    if resource.get("Type") != "AWS::Glue::Table":
        raise Unusable(f"{template}: no AWS::Glue::Table named {logical_id}")
    table = (resource.get("Properties") or {}).get("TableInput") or {}
    if not table.get("StorageDescriptor", {}).get("Columns") or not table.get("PartitionKeys"):
        raise Unusable(f"{template}: {logical_id} has no Columns or no PartitionKeys")
    return table


def check_table(table: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The files' folder below the bucket (`reports/kpis/`) and the partition keys and types."""
    storage = table["StorageDescriptor"]
    formats = {
        "SerializationLibrary": (storage.get("SerdeInfo") or {}).get("SerializationLibrary"),
        "InputFormat": storage.get("InputFormat"),
        "OutputFormat": storage.get("OutputFormat"),
    }
    wanted = {"SerializationLibrary": PARQUET_SERDE, "InputFormat": PARQUET_INPUT, "OutputFormat": PARQUET_OUTPUT}
    for key, value in formats.items():
        if value != wanted[key]:
            raise Mismatch(f"the table's {key} is {value!r}, not Parquet's {wanted[key]!r}")
    location = str(storage.get("Location", ""))
    match = re.fullmatch(r"s3://[^/]+/(.*)", location)
    if not match or not location.endswith("/"):
        raise Mismatch(f"the table's Location {location!r} is not s3://BUCKET/PREFIX/")
    keys = [(str(k["Name"]), str(k["Type"])) for k in table["PartitionKeys"]]
    parameters = table.get("Parameters") or {}
    if str(parameters.get("projection.enabled", "")).lower() != "true":
        raise Mismatch("the table's partition projection is not enabled (projection.enabled)")
    expected_template = location + "".join(f"{name}=${{{name}}}/" for name, _ in keys)
    if parameters.get("storage.location.template") != expected_template:
        raise Mismatch(
            f"storage.location.template is {parameters.get('storage.location.template')!r}, "
            f"expected {expected_template!r} (the location, then the partition keys in order)"
        )
    for name, _ in keys:
        if not parameters.get(f"projection.{name}.type"):
            raise Mismatch(f"partition key {name} has no projection.{name}.type")
    return match.group(1), keys


# --------------------------------------------------------------------------------------------
# Types: what each reader says a column is, as the Glue type it must be
# --------------------------------------------------------------------------------------------


def glue_type_of_arrow(t: pa.DataType) -> str:
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        # Athena's timestamp is milliseconds; the export's instants are UTC.
        return "timestamp" if t.unit == "ms" and t.tz in ("UTC", "+00:00") else f"timestamp[{t.unit}, tz={t.tz}]"
    return f"arrow {t}"


def glue_type_of_duckdb(t: str) -> str:
    simple = {"INTEGER": "int", "BIGINT": "bigint", "VARCHAR": "string", "DATE": "date", "TIMESTAMP WITH TIME ZONE": "timestamp"}
    if t in simple:
        return simple[t]
    match = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", t)
    return f"decimal({match.group(1)},{match.group(2)})" if match else f"duckdb {t}"


def normal_glue_type(t: str) -> str:
    t = t.strip().lower()
    match = DECIMAL_TYPE.match(t)
    return f"decimal({match.group(1)},{match.group(2)})" if match else t


def check_columns(reader: str, where: str, got: list[tuple[str, str]], wanted: list[tuple[str, str]]) -> None:
    got_names, wanted_names = [n for n, _ in got], [n for n, _ in wanted]
    if got_names != wanted_names:
        missing = [n for n in wanted_names if n not in got_names]
        extra = [n for n in got_names if n not in wanted_names]
        if missing or extra:
            detail = f"not in the file: {missing}; not in the Glue table: {extra}"
        else:
            i = next(i for i, (g, w) in enumerate(zip(got_names, wanted_names)) if g != w)
            detail = f"the same names in another order: column {i} is {got_names[i]} in the file, {wanted_names[i]} in the table"
        raise Mismatch(f"{reader}: {where}: the columns are not the Glue table's ({detail})")
    for (name, got_type), (_, wanted_type) in zip(got, wanted):
        if got_type != wanted_type:
            raise Mismatch(f"{reader}: {where}: column {name} reads as {got_type}, the Glue table says {wanted_type}")


# --------------------------------------------------------------------------------------------
# Values, as printed
# --------------------------------------------------------------------------------------------


def plain(value: Any, glue_type: str) -> Any:
    """One value as the JSON prints it (both readers' values go through here)."""
    if value is None:
        return None
    if glue_type == "timestamp":
        # Milliseconds since the epoch (both readers are asked for that: no time zone library).
        instant = EPOCH + dt.timedelta(milliseconds=int(value))
        return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"
    if isinstance(value, decimal.Decimal):
        match = DECIMAL_TYPE.match(glue_type)
        if not match:
            raise Mismatch(f"a decimal in a column of type {glue_type}")
        # Exactly the column's scale, never an exponent: "0.3333", "0.0000", "180.0000".
        exact = value.quantize(decimal.Decimal(1).scaleb(-int(match.group(2))))
        if exact != value:
            raise Mismatch(f"{value} has more decimals than its column's {glue_type}")
        return format(exact, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bool, int, str)):
        return value
    raise Mismatch(f"unexpected {type(value).__name__} value {value!r} in a {glue_type} column")


def partition_values(relative: Path, keys: list[tuple[str, str]]) -> dict[str, str]:
    folders = relative.parts[:-1]
    names = [name for name, _ in keys]
    if len(folders) != len(keys) or any(not f.startswith(f"{n}=") for f, n in zip(folders, names)):
        raise Mismatch(f"{relative}: not under {'/'.join(f'{n}=…' for n in names)}/")
    values = {n: f[len(n) + 1 :] for f, n in zip(folders, names)}
    for name, glue_type in keys:
        if glue_type == "date":
            try:
                dt.date.fromisoformat(values[name])
            except ValueError as e:
                raise Mismatch(f"{relative}: {name}={values[name]} is not a YYYY-MM-DD date") from e
    return values


def read_with_pyarrow(root: Path, base: Path, columns: list[tuple[str, str]], keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    files = sorted(base.rglob("*.parquet"), key=str)
    if not files:
        raise Unusable(f"no *.parquet file under {base}")
    for path in files:
        relative = path.relative_to(base)
        where = str(path.relative_to(root))
        partition = partition_values(relative, keys)
        try:
            table = pq.read_table(path, partitioning=None)
        except (OSError, pa.ArrowException) as e:
            raise Mismatch(f"pyarrow cannot read {where}: {e}") from e
        got = [(f.name, glue_type_of_arrow(f.type)) for f in table.schema]
        check_columns("pyarrow", where, got, columns)
        data: dict[str, list[Any]] = {}
        for name, glue_type in columns:
            column = table.column(name)
            if glue_type == "timestamp":
                column = column.cast(pa.int64())  # milliseconds, as the type check made sure
            data[name] = [plain(v, glue_type) for v in column.to_pylist()]
        for i in range(table.num_rows):
            row = {name: data[name][i] for name, _ in columns}
            for name, glue_type in keys:
                row[name] = partition[name]
            row["file"] = where
            rows.append(row)
        # The file's own columns must say the same as its folders.
        for i, row in enumerate(rows[len(rows) - table.num_rows :]):
            for key, column in (("client", "client_id"), ("campaign", "campaign_id"), ("dt", "day")):
                if key in partition and column in row and row[column] != partition[key]:
                    raise Mismatch(f"{where} row {i}: {column} = {row[column]!r} but the folder says {key}={partition[key]}")
    return rows


def read_with_duckdb(root: Path, base: Path, columns: list[tuple[str, str]], keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    duck_types = {"string": "VARCHAR", "date": "DATE", "int": "INTEGER", "bigint": "BIGINT"}
    hive_types = ", ".join(f"'{name}': '{duck_types.get(t, t.upper())}'" for name, t in keys)
    pattern = str(base / "**" / "*.parquet").replace("'", "''")
    source = (
        f"read_parquet('{pattern}', hive_partitioning = true, hive_types = {{{hive_types}}}, "
        "filename = true, file_row_number = true)"
    )
    connection = duckdb.connect(":memory:")
    try:
        described = connection.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()
        types = {name: glue_type_of_duckdb(t) for name, t, *_ in described}
        added = {name for name, _ in keys} | {"filename", "file_row_number"}
        got = [(name, types[name]) for name, *_ in described if name not in added]
        check_columns("duckdb", f"{base.relative_to(root)}/**/*.parquet", got, columns)
        for name, glue_type in keys:
            if types.get(name) != glue_type:
                raise Mismatch(f"duckdb: partition key {name} reads as {types.get(name)}, the Glue table says {glue_type}")
        selected = [f'epoch_ms("{n}")' if t == "timestamp" else f'"{n}"' for n, t in columns]
        selected += [f'"{n}"' for n, _ in keys] + ["filename", "file_row_number"]
        result = connection.sql(
            f"SELECT {', '.join(selected)} FROM {source} ORDER BY filename, file_row_number"
        ).fetchall()
    except duckdb.Error as e:
        raise Mismatch(f"duckdb cannot read {base}: {e}") from e
    finally:
        connection.close()
    rows = []
    for record in result:
        row = {name: plain(record[i], glue_type) for i, (name, glue_type) in enumerate(columns)}
        for j, (name, glue_type) in enumerate(keys):
            row[name] = plain(record[len(columns) + j], glue_type)
        row["file"] = str(Path(record[-2]).relative_to(root))
        rows.append(row)
    return rows


def compare(arrow_rows: list[dict[str, Any]], duck_rows: list[dict[str, Any]]) -> None:
    if len(arrow_rows) != len(duck_rows):
        raise Mismatch(f"pyarrow read {len(arrow_rows)} rows, duckdb {len(duck_rows)}")
    # Both in file order: by path, then row (pyarrow's files sorted, duckdb's ORDER BY).
    duck_rows.sort(key=lambda r: r["file"])  # stable: keeps file_row_number order within a file
    for i, (a, d) in enumerate(zip(arrow_rows, duck_rows)):
        if a != d:
            differing = sorted(k for k in a.keys() | d.keys() if a.get(k) != d.get(k))
            detail = ", ".join(f"{k}: pyarrow {a.get(k)!r}, duckdb {d.get(k)!r}" for k in differing)
            raise Mismatch(f"row {i} ({a.get('file')}): the readers disagree: {detail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the folder laid out as the reports bucket")
    parser.add_argument("--template", type=Path, required=True, help="infra/template.yaml")
    parser.add_argument("--table", default="KpiReportsTable", help="the AWS::Glue::Table's logical id")
    args = parser.parse_args()
    try:
        table = glue_table(args.template, args.table)
        prefix, keys = check_table(table)
        columns = [(str(c["Name"]), normal_glue_type(str(c["Type"]))) for c in table["StorageDescriptor"]["Columns"]]
        root = args.root.resolve()
        base = root / prefix
        if not base.is_dir():
            raise Unusable(f"{base} is not a folder (the table's location below the bucket is {prefix!r})")
        arrow_rows = read_with_pyarrow(root, base, columns, keys)
        duck_rows = read_with_duckdb(root, base, columns, keys)
        compare(arrow_rows, duck_rows)
    except Unusable as e:
        print(f"read_kpi_parquet: {e}", file=sys.stderr)
        return 2
    except Mismatch as e:
        print(f"read_kpi_parquet: MISMATCH: {e}", file=sys.stderr)
        return 1
    json.dump(arrow_rows, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    print(
        f"read_kpi_parquet: {len(arrow_rows)} rows in {len({r['file'] for r in arrow_rows})} files; "
        f"pyarrow {pa.__version__} and duckdb {duckdb.__version__} agree with each other and with the Glue table",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
