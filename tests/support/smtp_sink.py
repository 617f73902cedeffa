"""A real SMTP server for the mail tests (aiosmtpd): every message it accepts is written to a
folder as one file, the envelope recipients first. Runs until its standard input closes.

Usage: smtp_sink.py PORT FOLDER
"""
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = os.path.join(self.folder, "%05d.eml" % self.count)
        header = ("X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode()
        with open(name + ".part", "wb") as f:
            f.write(header + envelope.original_content)
        os.rename(name + ".part", name)
        return "250 Message accepted"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
