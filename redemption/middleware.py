"""Give every request an id: in the X-Request-Id response header and in every log line."""

from collections.abc import Callable, Iterator

from django.http import FileResponse, HttpRequest, HttpResponseBase, StreamingHttpResponse

from redemption import logs


class RequestIdMiddleware:
    """Keep a well-formed incoming X-Request-Id (else make one) for the whole request.

    First in MIDDLEWARE, so that every response carries the header, static files and redirects
    included. A streamed body (CSV exports) is produced after the view returns; the id is set
    again around each chunk so that what is logged while streaming still names the request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = logs.request_id_for(request.headers.get(logs.REQUEST_ID_HEADER))
        request.META[logs.REQUEST_ID_ENVIRON] = request_id
        token = logs.REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            logs.REQUEST_ID.reset(token)
        response[logs.REQUEST_ID_HEADER] = request_id
        if isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
            content = response.streaming_content
            if isinstance(content, Iterator):
                response.streaming_content = _with_request_id(content, request_id)
        return response


def _with_request_id(iterator: Iterator[bytes], request_id: str) -> Iterator[bytes]:
    while True:
        token = logs.REQUEST_ID.set(request_id)
        try:
            chunk = next(iterator, None)
        finally:
            logs.REQUEST_ID.reset(token)
        if chunk is None:
            return
        yield chunk
