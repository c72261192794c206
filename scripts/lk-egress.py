#!/usr/bin/env python3
"""LiveKit's Egress API through the official Python client (livekit-api), for tests and
measurements: what a user's SDK call does, pointed at livekit-server or at tessera's own
standalone API.

  lk-egress.py --url http://HOST:PORT --api-key K --api-secret S call METHOD 'JSON'
      One call; prints the response as JSON on stdout and `elapsed_ms=N` on stderr, or
      `error: CODE MESSAGE` on stdout with exit status 1.
  lk-egress.py ... create-room 'JSON'
      RoomService.CreateRoom (a room with an `egress` starts it by itself: auto egress).

METHOD is the Twirp method: StartRoomCompositeEgress, StartWebEgress,
StartParticipantEgress, StartTrackCompositeEgress, StartTrackEgress, StartEgress,
UpdateLayout, UpdateStream, ListEgress, StopEgress.
"""

import argparse
import asyncio
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")

from google.protobuf.json_format import MessageToDict, ParseDict  # noqa: E402
from livekit import api  # noqa: E402

METHODS = {
    "StartRoomCompositeEgress": ("start_room_composite_egress", api.RoomCompositeEgressRequest),
    "StartWebEgress": ("start_web_egress", api.WebEgressRequest),
    "StartParticipantEgress": ("start_participant_egress", api.ParticipantEgressRequest),
    "StartTrackCompositeEgress": ("start_track_composite_egress", api.TrackCompositeEgressRequest),
    "StartTrackEgress": ("start_track_egress", api.TrackEgressRequest),
    "UpdateLayout": ("update_layout", api.UpdateLayoutRequest),
    "UpdateStream": ("update_stream", api.UpdateStreamRequest),
    "ListEgress": ("list_egress", api.ListEgressRequest),
    "StopEgress": ("stop_egress", api.StopEgressRequest),
}
if hasattr(api, "StartEgressRequest"):
    METHODS["StartEgress"] = ("start_egress", api.StartEgressRequest)


def to_dict(msg):
    """Every field, defaults included (a STARTING status is the enum's zero)."""
    try:
        return MessageToDict(
            msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    except TypeError:  # protobuf < 5.26
        return MessageToDict(
            msg, preserving_proto_field_name=True, including_default_value_fields=True
        )


def to_json(msg):
    return json.dumps(to_dict(msg))


async def call(lk, method, body):
    name, cls = METHODS[method]
    req = ParseDict(json.loads(body), cls())
    return await getattr(lk.egress, name)(req)


def describe(e):
    code = getattr(e, "code", None) or type(e).__name__
    msg = getattr(e, "message", None) or str(e)
    return code, msg


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--api-secret", required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("call")
    c.add_argument("method", choices=sorted(METHODS))
    c.add_argument("body")
    r = sub.add_parser("create-room")
    r.add_argument("body")
    a = p.parse_args()
    lk = api.LiveKitAPI(url=a.url, api_key=a.api_key, api_secret=a.api_secret)
    status = 0
    try:
        if a.cmd == "call":
            t = time.monotonic()
            try:
                res = await call(lk, a.method, a.body)
                print(to_json(res))
            except Exception as e:  # the client's TwirpError, or a transport error
                code, msg = describe(e)
                print(f"error: {code} {msg}")
                status = 1
            print(f"elapsed_ms={(time.monotonic() - t) * 1000:.1f}", file=sys.stderr)
        elif a.cmd == "create-room":
            req = ParseDict(json.loads(a.body), api.CreateRoomRequest())
            res = await lk.room.create_room(req)
            print(to_json(res))
    finally:
        await lk.aclose()
    sys.exit(status)


asyncio.run(main())
