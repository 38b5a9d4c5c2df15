"""SQS's errors as the JSON protocol carries them.

The body names the error shape (`com.amazonaws.sqs#QueueDoesNotExist`), which
botocore uses to pick the exception class; the `x-amzn-query-error` header carries
the code SQS had in its older Query protocol (`AWS.SimpleQueueService.NonExistentQueue`),
which botocore reports as `Error.Code`, as it does against real SQS.
"""

from __future__ import annotations


class SqsError(Exception):
    def __init__(self, shape: str, message: str, *, code: str | None = None, status: int = 400):
        super().__init__(message)
        self.shape = shape
        self.message = message
        self.code = code or shape
        self.status = status

    @property
    def fault(self) -> str:
        return "Sender" if self.status < 500 else "Receiver"

    def entry(self, entry_id: str) -> dict[str, object]:
        """This error as one failed entry of a batch response."""
        return {
            "Id": entry_id,
            "SenderFault": self.status < 500,
            "Code": self.code,
            "Message": self.message,
        }


_LEGACY = "AWS.SimpleQueueService."


def queue_does_not_exist() -> SqsError:
    return SqsError(
        "QueueDoesNotExist",
        "The specified queue does not exist.",
        code=_LEGACY + "NonExistentQueue",
    )


def queue_name_exists(name: str) -> SqsError:
    return SqsError(
        "QueueNameExists",
        "A queue already exists with the same name and a different value for attribute(s) "
        f"of {name}.",
        code="QueueAlreadyExists",
    )


def invalid_parameter(message: str) -> SqsError:
    return SqsError("InvalidParameterValue", message)


def invalid_value(name: str, value: object, reason: str) -> SqsError:
    return invalid_parameter(f"Value {value} for parameter {name} is invalid. Reason: {reason}")


def missing_parameter(name: str) -> SqsError:
    return SqsError("MissingParameter", f"The request must contain the parameter {name}.")


def invalid_attribute_name(name: str) -> SqsError:
    return SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")


def invalid_attribute_value(name: str, reason: str = "") -> SqsError:
    message = f"Invalid value for the parameter {name}."
    return SqsError("InvalidAttributeValue", f"{message} Reason: {reason}" if reason else message)


def receipt_handle_invalid(handle: str) -> SqsError:
    return SqsError(
        "ReceiptHandleIsInvalid",
        f'The input receipt handle "{handle}" is not a valid receipt handle.',
    )


def not_in_flight(handle: str) -> SqsError:
    return invalid_value(
        "ReceiptHandle",
        handle,
        "Message does not exist or is not available for visibility timeout change.",
    )


def empty_batch(action: str) -> SqsError:
    return SqsError(
        "EmptyBatchRequest",
        f"There should be at least one {action}BatchRequestEntry in the request.",
        code=_LEGACY + "EmptyBatchRequest",
    )


def too_many_entries(count: int) -> SqsError:
    return SqsError(
        "TooManyEntriesInBatchRequest",
        f"Maximum number of entries per request are 10. You have sent {count}.",
        code=_LEGACY + "TooManyEntriesInBatchRequest",
    )


def ids_not_distinct(entry_id: str) -> SqsError:
    return SqsError(
        "BatchEntryIdsNotDistinct",
        f"Id {entry_id} repeated.",
        code=_LEGACY + "BatchEntryIdsNotDistinct",
    )


def invalid_batch_entry_id() -> SqsError:
    return SqsError(
        "InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
        "It can be at most 80 letters long.",
        code=_LEGACY + "InvalidBatchEntryId",
    )


def batch_too_long(limit: int, length: int) -> SqsError:
    return SqsError(
        "BatchRequestTooLong",
        f"Batch requests cannot be longer than {limit} bytes. You have sent {length} bytes.",
        code=_LEGACY + "BatchRequestTooLong",
    )


def invalid_message_contents(char: str) -> SqsError:
    return SqsError(
        "InvalidMessageContents",
        f"Invalid binary character '#x{ord(char):X}' was found in the message body, the set of "
        "allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | "
        "#x10000 to #x10FFFF",
    )


def unsupported_operation(operation: str) -> SqsError:
    return SqsError(
        "UnsupportedOperation",
        f"local_queue does not implement {operation}.",
        code=_LEGACY + "UnsupportedOperation",
    )


def resource_not_found(message: str) -> SqsError:
    return SqsError("ResourceNotFoundException", message)


def internal_error() -> SqsError:
    return SqsError("InternalError", "The request processing has failed.", status=500)
