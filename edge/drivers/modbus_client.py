"""A thin adapter over pymodbus' async clients: the only module that knows their signatures.

Theory of operation
-------------------
:class:`ModbusClient` speaks three requests, which is all a sign bus needs::

    write_registers(unit, address, values)  function 16  -> None
    read_holding(unit, address, count)      function 3   -> list[int]
    read_input(unit, address, count)        function 4   -> list[int]

over Modbus TCP (MBAP framing) or Modbus RTU on a serial line::

    TCP:  | tid 2B | proto 0000 | len 2B | unit | fc | data ... |
    RTU:  | unit | fc | data ... | CRC 2B LE |      (frames separated by 3.5 character times)

Retry policy and up/down state belong to the caller (:mod:`edge.drivers.sign_bus`), so
pymodbus is told not to retry (``retries=0``), not to reconnect on its own
(``reconnect_delay=0``) and never to drop a TCP connection because one unit is silent (its
"no response from the last retries+3 requests, CLOSING CONNECTION" rule, which on a shared
gateway would take every other sign down with the silent one).

pymodbus' failures are mapped here into :mod:`edge.drivers.errors`, most specific first:

* the transport is gone (before or during the request) -> :class:`SignBusConnectionError`
* an exception response (function code | 0x80)       -> :class:`SignUnitException` (``code``)
* no valid answer within ``timeout_s``                 -> :class:`SignUnitTimeout`

pymodbus 3.16 calls the unit ``device_id=`` (it was ``slave=`` before 3.9); that churn ends
here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from edge.config import SignBusConfig
from edge.drivers.errors import (
    SignBusConnectionError,
    SignBusError,
    SignUnitException,
    SignUnitTimeout,
)

__all__ = ["ModbusClient", "quiet_pymodbus_logging"]

# pymodbus counts consecutive unanswered requests and closes a TCP connection after
# retries + 3 of them; our per-unit policy decides instead, so the count never runs out.
_NEVER_DISCONNECT = 2**31

# Lines pymodbus logs on every failed request or connect; the sign bus counts these and logs
# each state change once, so repeating them per request is noise.
_REPEATED_LINES = (
    "No response received",
    "Failed to connect",
    "Not connected",
    "Cancel send",
    "received pdu without a corresponding request",
)

CONNECT_TIMEOUT_S = 3.0  # the TCP connect to a sign bus or gateway, whatever the answer timeout


class _DropRepeated(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(line in message for line in _REPEATED_LINES)


_FILTER = _DropRepeated()


def quiet_pymodbus_logging() -> None:
    """pymodbus logs at WARNING and above, without its per-request failure lines."""
    logger = logging.getLogger("pymodbus")
    if logger.level == logging.NOTSET or logger.level < logging.WARNING:
        logger.setLevel(logging.WARNING)
    for name in ("pymodbus", "pymodbus.logging"):
        target = logging.getLogger(name)
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)


class ModbusClient:
    """One Modbus client (TCP or RTU) for one bus; not re-entrant, one request at a time."""

    def __init__(
        self,
        *,
        bus: str,
        transport: Literal["rtu", "tcp"],
        timeout_s: float,
        host: str | None = None,
        port: int = 502,
        device: str | None = None,
        baud: int = 9600,
        parity: Literal["N", "E", "O"] = "N",
    ) -> None:
        quiet_pymodbus_logging()
        self.bus = bus
        self.transport = transport
        self.timeout_s = timeout_s
        self.where: str
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if transport == "tcp":
            if not host:
                raise ValueError("a tcp bus needs a host")
            self.where = f"{host}:{port}"
            self._client = AsyncModbusTcpClient(
                host, port=port, timeout=timeout_s, retries=0, reconnect_delay=0
            )
        else:
            if not device:
                raise ValueError("an rtu bus needs a device")
            self.where = device
            self._client = AsyncModbusSerialClient(
                device,
                framer=FramerType.RTU,
                baudrate=baud,
                parity=parity,
                bytesize=8,
                stopbits=1,
                timeout=timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        self._client.set_max_no_responses(_NEVER_DISCONNECT)

    @classmethod
    def from_config(cls, bus: str, config: SignBusConfig) -> ModbusClient:
        return cls(
            bus=bus,
            transport=config.transport,
            timeout_s=config.timeout_s,
            host=config.host,
            port=config.port,
            device=config.device,
            baud=config.baud,
            parity=config.parity,
        )

    @property
    def connected(self) -> bool:
        return self._client.connected

    async def connect(self) -> None:
        """Open the TCP connection or the serial port; SignBusConnectionError if it fails."""
        # pymodbus bounds the connect and each answer with one setting: ``timeout_s`` is the
        # answer's (a scan probes with 0.1 s), the connect gets at least CONNECT_TIMEOUT_S, or
        # a loaded box fails to reach a live bus.
        params = self._client.ctx.comm_params
        params.timeout_connect = max(self.timeout_s, CONNECT_TIMEOUT_S)
        try:
            ok = await self._client.connect()
        except (ModbusException, OSError) as exc:
            raise SignBusConnectionError(
                f"cannot connect to {self.where}: {exc}", bus=self.bus
            ) from exc
        finally:
            params.timeout_connect = self.timeout_s
        if not ok or not self._client.connected:
            raise SignBusConnectionError(f"cannot connect to {self.where}", bus=self.bus)

    def close(self) -> None:
        self._client.close()

    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None:
        """Function 16: write ``values`` to holding registers from ``address``."""
        await self._execute(
            unit,
            address,
            lambda: self._client.write_registers(address, list(values), device_id=unit),
        )

    async def read_holding(self, unit: int, address: int, count: int) -> list[int]:
        """Function 3: ``count`` holding registers from ``address``."""
        response = await self._execute(
            unit,
            address,
            lambda: self._client.read_holding_registers(address, count=count, device_id=unit),
        )
        return self._registers(response, unit, address, count)

    async def read_input(self, unit: int, address: int, count: int) -> list[int]:
        """Function 4: ``count`` input registers from ``address``."""
        response = await self._execute(
            unit,
            address,
            lambda: self._client.read_input_registers(address, count=count, device_id=unit),
        )
        return self._registers(response, unit, address, count)

    def _registers(self, response: ModbusPDU, unit: int, address: int, count: int) -> list[int]:
        registers = list(response.registers)
        if len(registers) != count:
            raise SignUnitTimeout(
                f"asked for {count} registers, the answer has {len(registers)}",
                bus=self.bus,
                unit=unit,
                register=address,
            )
        return registers

    async def _execute(
        self, unit: int, address: int, call: Callable[[], Awaitable[ModbusPDU]]
    ) -> ModbusPDU:
        if not self._client.connected:
            # pymodbus would try to connect by itself here; connecting is the bus owner's call.
            raise SignBusConnectionError(
                f"not connected to {self.where}", bus=self.bus, unit=unit, register=address
            )
        try:
            response = await call()
        except ConnectionException as exc:
            raise SignBusConnectionError(
                f"connection to {self.where} lost: {exc}", bus=self.bus, unit=unit, register=address
            ) from exc
        except ModbusIOException as exc:
            if not self._client.connected:
                raise SignBusConnectionError(
                    f"connection to {self.where} lost during the request",
                    bus=self.bus,
                    unit=unit,
                    register=address,
                ) from exc
            raise SignUnitTimeout(
                "no answer within the timeout", bus=self.bus, unit=unit, register=address
            ) from exc
        except (ModbusException, OSError) as exc:  # OSError covers TimeoutError
            if not self._client.connected:
                raise SignBusConnectionError(
                    f"connection to {self.where} lost: {exc}",
                    bus=self.bus,
                    unit=unit,
                    register=address,
                ) from exc
            raise SignBusError(
                f"request failed: {exc}", bus=self.bus, unit=unit, register=address
            ) from exc
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Python 3.11's wait_for inside pymodbus drops a cancellation that arrives in the
            # same loop turn as the answer; without this the owner task would never stop.
            raise asyncio.CancelledError
        if isinstance(response, ExceptionResponse) or response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise SignUnitException(
                f"exception response, code {code}",
                bus=self.bus,
                code=code,
                unit=unit,
                register=address,
            )
        return response
