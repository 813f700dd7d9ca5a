"""Binance USD-M error responses, code for code and message for message.

Every error the fake returns is a `BinanceError`; the server turns it into the HTTP status and
the `{"code": ..., "msg": ...}` body Binance sends. Codes and texts are from Binance's USD-M
error page (https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code,
as scraped 2026-05-28 in github.com/shubhamtaywade82/binance-docs-scraper,
knowledge_base/markdown/binance/derivatives/usds-margined-futures/error-code.md). Where the page
lists a template (`%s`), the filled-in form is the one Binance sends, with parameter names in
lower case as Binance writes them ("Mandatory parameter 'timeinforce' was not sent, ...").

HTTP status: 401 for the API-key errors (-2014, -2015), 429 for -1003, 400 for the rest: the
general-info page says 4XX is the sender's fault, and Binance answers key errors with 401.
"""

from __future__ import annotations


class BinanceError(Exception):
    """An error response: `status` is the HTTP status, `code`/`msg` the JSON body."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


# 10xx: general
def too_many_requests(limit: int = 2400) -> BinanceError:
    return BinanceError(-1003, f"Too many requests; current limit is {limit} requests per "
                        "minute. Please use the websocket for live updates to avoid polling "
                        "the API.", 429)


def timestamp_outside_recv_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def invalid_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


# 11xx: request issues
def mandatory_param(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name.lower()}' was not sent, was "
                        "empty/null, or malformed.")


def one_of_params(a: str, b: str) -> BinanceError:
    return BinanceError(-1102, f"Param '{a}' or '{b}' must be sent, but both were empty/null!")


def param_not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name.lower()}' sent when not required.")


def bad_precision() -> BinanceError:
    return BinanceError(-1111, "Precision is over the maximum defined for this asset.")


def invalid_order_type() -> BinanceError:
    return BinanceError(-1116, "Invalid orderType.")


def invalid_side() -> BinanceError:
    return BinanceError(-1117, "Invalid side.")


def bad_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_listen_key() -> BinanceError:
    return BinanceError(-1125, "This listenKey does not exist.")


def lookup_interval_too_big(hours: int = 168) -> BinanceError:
    return BinanceError(-1127, f"More than {hours} hours between startTime and endTime.")


def invalid_parameter(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


# 20xx: processing
def unknown_order_sent() -> BinanceError:
    return BinanceError(-2011, "Unknown order sent.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def api_key_format_invalid() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", 401)


def rejected_api_key() -> BinanceError:
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def margin_insufficient() -> BinanceError:
    return BinanceError(-2019, "Margin is insufficient.")


def would_immediately_trigger() -> BinanceError:
    return BinanceError(-2021, "Order would immediately trigger.")


def reduce_only_rejected() -> BinanceError:
    return BinanceError(-2022, "ReduceOnly Order is rejected.")


# 40xx: filters and parameters
def qty_less_than_zero() -> BinanceError:
    return BinanceError(-4003, "Quantity less than zero.")


def qty_less_than_min() -> BinanceError:
    return BinanceError(-4004, "Quantity less than min quantity.")


def qty_greater_than_max() -> BinanceError:
    return BinanceError(-4005, "Quantity greater than max quantity.")


def price_less_than_min() -> BinanceError:
    return BinanceError(-4013, "Price less than min price.")


def price_not_tick() -> BinanceError:
    return BinanceError(-4014, "Price not increased by tick size.")


def invalid_client_order_id() -> BinanceError:
    return BinanceError(-4015, "Client order id is not valid.")


def price_greater_than_max() -> BinanceError:
    return BinanceError(-4016, "Price is higher than mark price multiplier cap.")


def qty_not_step() -> BinanceError:
    return BinanceError(-4023, "Qty not increased by step size.")


def invalid_leverage(value: str) -> BinanceError:
    return BinanceError(-4028, f"Leverage {value} is not valid")


def no_need_to_change_position_side() -> BinanceError:
    return BinanceError(-4059, "No need to change position side.")


def position_side_not_match() -> BinanceError:
    return BinanceError(-4061, "Order's position side does not match user's setting.")


def position_side_change_open_orders() -> BinanceError:
    return BinanceError(-4067, "Position side cannot be changed if there exists open orders.")


def position_side_change_position() -> BinanceError:
    return BinanceError(-4068, "Position side cannot be changed if there exists position.")


def duplicated_client_order_id() -> BinanceError:
    return BinanceError(-4116, "clientOrderId is duplicated")


def use_algo_endpoint() -> BinanceError:
    return BinanceError(-4120, "Order type not supported for this endpoint. Please use the "
                        "Algo Order API endpoints instead.")


def min_notional(limit: str) -> BinanceError:
    return BinanceError(-4164, f"Order's notional must be no smaller than {limit} (unless you "
                        "choose reduce only).")


# 50xx: execution
def fok_rejected() -> BinanceError:
    return BinanceError(-5021, "Due to the order could not be filled immediately, the FOK "
                        "order has been rejected.")


def gtx_rejected() -> BinanceError:
    return BinanceError(-5022, "Due to the order could not be executed as maker, the Post Only "
                        "order will be rejected.")


def same_order() -> BinanceError:
    return BinanceError(-5027, "No need to modify the order.")
