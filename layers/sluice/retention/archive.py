"""The archive of expired events in S3: gzip'd JSON Lines, one folder per app and day.

    s3://<bucket>/events/app_id=<app>/date=<YYYY-MM-DD>/part-0000.jsonl.gz

Athena reads it as the table the template defines (a JSON SerDe over gzip, partition
projection on app_id and date). JSON Lines and gzip rather than Parquet: pyarrow
would be the layer's largest package by far (over 100 MB unpacked, near Lambda's
250 MB limit with the rest) for a format read rarely, and the standard library
writes this one in bounded memory.

`python -m tools.archive read APP_ID DATE` prints a day's events back, one JSON
object a line (`make archive-read`).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# S3's smallest multipart part but the last is 5 MiB; 8 MiB of compressed bytes is
# what a write holds in memory at most, whatever the day's size.
PART_BYTES = 8 * 1024 * 1024
PREFIX = "events"


def day_prefix(app_id: str, day: date) -> str:
    return f"{PREFIX}/app_id={app_id}/date={day.isoformat()}/"


def object_key(app_id: str, day: date, part: int) -> str:
    return f"{day_prefix(app_id, day)}part-{part:04d}.jsonl.gz"


@dataclass(slots=True)
class Deletion:
    """What S3 did with a delete: objects deleted, and S3's error code -> objects it refused."""

    deleted: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def left(self) -> int:
        return sum(self.refused.values())


class ArchiveNotDeleted(Exception):
    """S3 refused to delete archived objects of deleted apps; the next run tries again."""

    def __init__(self, objects: int) -> None:
        super().__init__(f"{objects} archived object(s) of deleted apps not deleted")
        self.objects = objects


class ArchiveBucket:
    """Writes and reads the archive through an S3 client (boto3's, or moto's locally)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def write(self, key: str, lines: Iterable[str]) -> int:
        """Streams `lines` into one gzip object by multipart upload; returns the line count.

        Memory holds one part (PART_BYTES) of compressed output, never the day. An
        upload that fails is aborted, so no half object is ever visible (and the
        bucket's lifecycle rule removes parts an interrupted process leaves behind).
        """
        upload = self.s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType="application/x-ndjson", ContentEncoding="gzip"
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        buffer = io.BytesIO()
        # A gzip stream (header and trailer), so S3 objects are plain .gz files.
        compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        count = 0

        def send(data: bytes) -> None:
            number = len(parts) + 1
            answer = self.s3.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})

        try:
            for line in lines:
                buffer.write(compressor.compress(line.encode() + b"\n"))
                count += 1
                if buffer.tell() >= PART_BYTES:
                    send(buffer.getvalue())
                    buffer = io.BytesIO()
            buffer.write(compressor.flush())
            send(buffer.getvalue())
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return count

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def read(self, app_id: str, day: date) -> Iterator[bytes]:
        """The day's archived lines (JSON, without the newline), part after part, streamed."""
        for key in sorted(self.keys(day_prefix(app_id, day))):
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            with gzip.GzipFile(fileobj=body) as unzipped:
                for line in unzipped:
                    yield line.rstrip(b"\n")

    def delete_app(self, app_id: str) -> Deletion:
        """Deletes every archived object of an app; what S3 deleted and what it refused."""
        deletion = Deletion()
        batch: list[dict[str, str]] = []
        for key in self.keys(f"{PREFIX}/app_id={app_id}/"):
            batch.append({"Key": key})
            if len(batch) == 1000:  # DeleteObjects' most
                self._delete(batch, deletion)
                batch = []
        if batch:
            self._delete(batch, deletion)
        return deletion

    def _delete(self, batch: list[dict[str, str]], deletion: Deletion) -> None:
        # DeleteObjects answers 200 whatever happened to each object: Quiet lists only
        # the objects it did not delete (AccessDenied, InternalError, ...), in Errors.
        answer = self.s3.delete_objects(
            Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = answer.get("Errors", [])
        deletion.refused.update(error.get("Code", "") for error in errors)
        deletion.deleted += len(batch) - len(errors)
