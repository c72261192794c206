#!/usr/bin/env python3
"""A synthetic LiveKit participant: joins a room with the official Python SDK (its wheel
carries the native WebRTC library) and publishes a camera and a microphone.

The camera shows one colour (`--rgb`) with a black bar moving along the bottom edge (so
a frozen picture can be told from a live one); the microphone plays one sine tone
(`--tone`). With `--flash`, once a second (at whole seconds since `--epoch-ms`) the
picture turns white for 100 ms and the tone is replaced by a 1 kHz beep of the same
length, both stamped for the same instant: a lip-sync probe.

Timed actions: `--at 5:mute-video --at 7:unmute-video --at 9:unpublish-video
--at 11:publish-video --at 13:leave` (seconds after joining); `publish-video-h264` (or
-vp8, -vp9, -av1) republishes the camera with another codec; with `--audio-later` the
microphone waits for a `publish-audio` action. `--screen-rgb R,G,B` also publishes a
screen share of that colour; `--kind agent` joins as an agent.

Transcriptions: `--caption 2.5|SG_1|final|Hello there` sends, 2.5 s after joining, a text
stream on topic `lk.transcription` (segment `SG_1`, `final` or `interim`, transcribing
this participant's microphone) as LiveKit's agents do; `--legacy-caption` with the same
form sends the older `Transcription` data packet instead. Each prints
`caption SEGMENT unix_ms=T` as it is sent. livekit-server forwards `Transcription` packets
only from agents (`--kind agent`); `--transcribed IDENTITY` names whose speech it is.

Prints `track NAME sid=TR_…` for each track published, `published unix_ms=T` on stdout
once the first tracks are published and `action NAME unix_ms=T` as each action happens,
then runs until `--duration` ends, a `leave` action, or SIGTERM.
`--delete-room` instead deletes the room (RoomService.DeleteRoom) and exits.
"""

import argparse
import asyncio
import math
import signal
import sys
import time

import numpy as np
from livekit import api, rtc

RATE = 48_000
BLOCK = 480  # 10 ms


def token(args) -> str:
    grants = api.VideoGrants(room_join=True, room=args.room, can_publish=True,
                             can_subscribe=False)
    t = (api.AccessToken(args.api_key, args.api_secret)
         .with_identity(args.identity).with_name(args.name or args.identity)
         .with_grants(grants))
    if args.kind:
        t = t.with_kind(args.kind)
    return t.to_jwt()


class Camera:
    def __init__(self, args, rgb=None):
        self.w, self.h, self.fps = args.width, args.height, args.fps
        self.rgb = [int(c) for c in (rgb or args.rgb).split(",")]
        self.flash = args.flash
        self.epoch = args.epoch_ms / 1000.0
        self.source = rtc.VideoSource(self.w, self.h)
        self.base = np.zeros((self.h, self.w, 4), dtype=np.uint8)
        self.base[:, :, 0:3] = self.rgb
        self.base[:, :, 3] = 255
        self.white = np.full((self.h, self.w, 4), 255, dtype=np.uint8)
        self.track = None
        self.publication = None

    def frame(self, n: int, now: float) -> np.ndarray:
        if self.flash and (now - self.epoch) % 1.0 < 0.1:
            return self.white
        img = self.base.copy()
        bar_h = max(2, self.h // 12)
        bar_w = max(2, self.w // 8)
        x = (n * 4) % (self.w - bar_w)
        img[self.h - bar_h:, x:x + bar_w, 0:3] = 0
        return img

    async def run(self, stop: asyncio.Event):
        period = 1.0 / self.fps
        start = time.monotonic()
        n = 0
        while not stop.is_set():
            now = time.time()
            buf = self.frame(n, now)
            f = rtc.VideoFrame(self.w, self.h, rtc.VideoBufferType.RGBA, buf.tobytes())
            self.source.capture_frame(f, timestamp_us=int(now * 1e6))
            n += 1
            delay = start + n * period - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


class Microphone:
    def __init__(self, args):
        self.tone = args.tone
        self.volume = args.volume
        self.flash = args.flash
        self.epoch = args.epoch_ms / 1000.0
        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=100)
        self.track = None
        self.publication = None

    async def run(self, stop: asyncio.Event):
        sample = 0
        offsets = np.arange(BLOCK) / RATE
        while not stop.is_set():
            t = (sample + np.arange(BLOCK)) / RATE
            if self.flash:
                # Beep on whole seconds since the epoch: this block is played (captured,
                # for WebRTC) once the audio already queued has been.
                wall = time.time() + self.source.queued_duration + offsets
                in_beep = ((wall - self.epoch) % 1.0) < 0.1
                pcm = np.where(in_beep, 0.5 * np.sin(2 * math.pi * 1000 * t), 0.0)
            else:
                pcm = self.volume * np.sin(2 * math.pi * self.tone * t)
            frame = rtc.AudioFrame.create(RATE, 1, BLOCK)
            np.frombuffer(frame.data, dtype=np.int16)[:] = (pcm * 32767).astype(np.int16)
            await self.source.capture_frame(frame)
            sample += BLOCK


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="ws://127.0.0.1:7880")
    p.add_argument("--api-key", default="devkey")
    p.add_argument("--api-secret", default="secret")
    p.add_argument("--room", required=True)
    p.add_argument("--identity", default="publisher")
    p.add_argument("--name")
    p.add_argument("--rgb", default="200,40,40", help="R,G,B of the picture")
    p.add_argument("--tone", type=float, default=440.0, help="tone frequency, Hz")
    p.add_argument("--volume", type=float, default=0.3, help="tone amplitude (1 = full scale)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--codec", default="vp8", choices=["vp8", "vp9", "h264", "av1"])
    p.add_argument("--simulcast", action="store_true")
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--audio-later", action="store_true",
                   help="publish the microphone only at a publish-audio action")
    p.add_argument("--screen-rgb", help="also publish a screen share of this R,G,B")
    p.add_argument("--kind", help="participant kind in the token (e.g. agent)")
    p.add_argument("--flash", action="store_true", help="white frame + beep once a second")
    p.add_argument("--epoch-ms", type=int, default=0, help="flash phase origin (unix ms)")
    p.add_argument("--duration", type=float, default=3600.0)
    p.add_argument("--at", action="append", default=[], help="SECONDS:ACTION")
    p.add_argument("--caption", action="append", default=[],
                   help="SECONDS|SEGMENT|final or interim|TEXT: a transcription text stream")
    p.add_argument("--legacy-caption", action="append", default=[],
                   help="SECONDS|SEGMENT|final or interim|TEXT: a Transcription packet")
    p.add_argument("--start-muted", action="store_true",
                   help="publish the microphone muted (an unmute-audio action opens it)")
    p.add_argument("--transcribed-track", default="",
                   help="the track --legacy-caption transcribes (SDKs need one)")
    p.add_argument("--transcribed", help="whose speech --legacy-caption transcribes "
                   "(an agent's packets name the participant; default: this one)")
    p.add_argument("--delete-room", action="store_true")
    args = p.parse_args()

    if args.delete_room:
        http = args.url.replace("ws://", "http://").replace("wss://", "https://")
        lk = api.LiveKitAPI(http, args.api_key, args.api_secret)
        await lk.room.delete_room(api.DeleteRoomRequest(room=args.room))
        await lk.aclose()
        print("deleted", flush=True)
        return

    room = rtc.Room()
    await room.connect(args.url, token(args), options=rtc.RoomOptions(auto_subscribe=False))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    codecs = {"vp8": rtc.VideoCodec.VP8, "vp9": rtc.VideoCodec.VP9,
              "h264": rtc.VideoCodec.H264, "av1": rtc.VideoCodec.AV1}
    cam = None if args.no_video else Camera(args)
    mic = None if args.no_audio else Microphone(args)
    lp = room.local_participant

    async def publish_video(codec=args.codec):
        cam.track = rtc.LocalVideoTrack.create_video_track("camera", cam.source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA,
                                       video_codec=codecs[codec],
                                       simulcast=args.simulcast)
        cam.publication = await lp.publish_track(cam.track, opts)
        print(f"track camera sid={cam.publication.sid}", flush=True)

    async def publish_audio():
        mic.track = rtc.LocalAudioTrack.create_audio_track("microphone", mic.source)
        if args.start_muted:
            mic.track.mute()
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        mic.publication = await lp.publish_track(mic.track, opts)
        print(f"track microphone sid={mic.publication.sid}", flush=True)

    screen = Camera(args, args.screen_rgb) if args.screen_rgb else None

    tasks = []
    if cam:
        await publish_video()
        tasks.append(asyncio.create_task(cam.run(stop)))
    if screen:
        screen.track = rtc.LocalVideoTrack.create_video_track("screen", screen.source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_SCREENSHARE,
                                       video_codec=codecs[args.codec])
        screen.publication = await lp.publish_track(screen.track, opts)
        print(f"track screen sid={screen.publication.sid}", flush=True)
        tasks.append(asyncio.create_task(screen.run(stop)))
    if mic and not args.audio_later:
        await publish_audio()
        tasks.append(asyncio.create_task(mic.run(stop)))
    print(f"published unix_ms={int(time.time() * 1000)}", flush=True)

    async def actions():
        joined = time.monotonic()
        for spec in sorted(args.at, key=lambda s: float(s.split(":", 1)[0])):
            at, action = spec.split(":", 1)
            delay = joined + float(at) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            print(f"action {action} unix_ms={int(time.time() * 1000)}", flush=True)
            if action == "mute-video":
                cam.track.mute()
            elif action == "unmute-video":
                cam.track.unmute()
            elif action == "mute-audio":
                mic.track.mute()
            elif action == "unmute-audio":
                mic.track.unmute()
            elif action == "publish-audio":
                await publish_audio()
                tasks.append(asyncio.create_task(mic.run(stop)))
            elif action == "unpublish-audio":
                await lp.unpublish_track(mic.publication.sid)
            elif action == "unpublish-video":
                await lp.unpublish_track(cam.publication.sid)
            elif action == "publish-video":
                await publish_video()
            elif action.startswith("publish-video-"):  # with another codec: publish-video-h264
                await publish_video(action.removeprefix("publish-video-"))
            elif action == "leave":
                stop.set()
            else:
                print(f"unknown action {action}", file=sys.stderr, flush=True)

    tasks.append(asyncio.create_task(actions()))

    async def captions():
        joined = time.monotonic()
        specs = [(c, False) for c in args.caption] + [(c, True) for c in args.legacy_caption]
        for spec, legacy in sorted(specs, key=lambda s: float(s[0].split("|", 1)[0])):
            at, segment, kind, text = spec.split("|", 3)
            delay = joined + float(at) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            final = kind == "final"
            track = mic.publication.sid if mic and mic.publication else args.transcribed_track
            sent = int(time.time() * 1000)
            if legacy:
                seg = rtc.TranscriptionSegment(id=segment, text=text, start_time=0, end_time=0,
                                               language="en", final=final)
                await lp.publish_transcription(rtc.Transcription(
                    participant_identity=args.transcribed or args.identity, track_sid=track,
                    segments=[seg]))
            else:
                attrs = {"lk.segment_id": segment,
                         "lk.transcription_final": "true" if final else "false"}
                if track:
                    attrs["lk.transcribed_track_id"] = track
                await lp.send_text(text, topic="lk.transcription", attributes=attrs)
            print(f"caption {segment} unix_ms={sent}", flush=True)

    if args.caption or args.legacy_caption:
        tasks.append(asyncio.create_task(captions()))
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.duration)
    except asyncio.TimeoutError:
        pass
    stop.set()
    for t in tasks:
        t.cancel()
    await room.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
