"""Portal uploads: stop reading a file once it passes the size an import may have."""

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest


class CappedUploadHandler(FileUploadHandler):
    """Pass chunks on to the next handler until the upload passes `limit` bytes, then stop.

    Stopping closes (and so deletes) the partial temporary file; `exceeded` tells the view to
    show the limit. Whatever the client still sends is drained, bounded, by portal/drain.py.
    """

    def __init__(self, request: HttpRequest, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
