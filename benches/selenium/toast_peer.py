#!/usr/bin/env python3
"""The Selenium peer of synmon's journey bench (benches/journey.rs starts it).

Drives the bench's 3-step page (open, fill the name, click Save -> toast) the way a plain
Selenium monitoring script would: ONE session for all its runs, Debian's chromedriver and
Chromium with the flags synmon uses, and Selenium's own WebDriverWait for the toast.

It speaks JSON lines with the bench, so the bench can read the peer's cgroup CPU counter
exactly around the measured runs (the session start and the warm-up stay outside):
  -> {"ready": true, "session_create_ms": ...}    once the session is up
  <- "runs N truth" | "runs N plain"               N runs; "truth" also reads the page's truth
  -> {"runs": [...], "process_cpu_ms": ...}        per run: wall_ms, measured_ms (click ->
                                                   toast seen), truth_ms (page click -> toast)
  <- "quit"                                        quits the session, exits 0
"""

import argparse
import json
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

INPUT = "[data-test=name]"
BUTTON = "[data-test=save]"
TOAST = "[data-test=toast]"
TOAST_OK = "Saved"


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def options(args, profile_dir):
    # The same flags and prefs as synmon's `capabilities` (src/journey/webdriver.rs).
    o = webdriver.ChromeOptions()
    if not args.headed:
        o.add_argument("--headless=new")
    for a in [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=" + args.window,
        "--user-data-dir=" + profile_dir,
    ] + args.extra_arg:
        o.add_argument(a)
    o.add_experimental_option(
        "prefs", {"session.restore_on_startup": 4, "session.startup_urls": ["about:blank"]}
    )
    if args.browser_binary:
        o.binary_location = args.browser_binary
        if "headless-shell" in args.browser_binary.rsplit("/", 1)[-1]:
            # chromedriver starts the headless shell with a first tab only under its own
            # browser name (and waits for one forever otherwise), as synmon does.
            o.set_capability("browserName", "chrome-headless-shell")
    o.page_load_strategy = "normal"
    if os.environ.get("JOURNEY_BENCH_SELENIUM_BIDI") == "1":
        # A trial (benches/journey.rs): the session asks for WebDriver BiDi as synmon's do, so
        # chromedriver runs its BiDi mapper tab; the script itself sends no BiDi command.
        o.set_capability("webSocketUrl", True)
    return o


def run_once(driver, url, poll_s, truth):
    t0 = time.perf_counter()
    driver.get(url)
    name = driver.find_element(By.CSS_SELECTOR, INPUT)
    name.clear()
    name.send_keys("selenium")
    t_click = time.perf_counter()
    driver.find_element(By.CSS_SELECTOR, BUTTON).click()
    WebDriverWait(driver, 5, poll_frequency=poll_s).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, TOAST), TOAST_OK)
    )
    end = time.perf_counter()
    r = {"wall_ms": (end - t0) * 1e3, "measured_ms": (end - t_click) * 1e3}
    if truth:
        v = driver.execute_script("return window.__truth;")
        r["truth_ms"] = v["toast"] - v["click"]
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the toast page")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--browser-binary", default=None)
    ap.add_argument("--poll-ms", type=float, default=500.0, help="WebDriverWait poll (its default: 500)")
    ap.add_argument("--window", default="1280,800")
    ap.add_argument("--headed", action="store_true")
    ap.add_argument("--extra-arg", action="append", default=[], help="one more Chromium argument")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="selenium-peer-chrome-") as profile:
        t = time.perf_counter()
        driver = webdriver.Chrome(
            service=Service(executable_path=args.chromedriver), options=options(args, profile)
        )
        try:
            emit({"ready": True, "session_create_ms": (time.perf_counter() - t) * 1e3})
            for line in sys.stdin:
                cmd = line.split()
                if not cmd:
                    continue
                if cmd[0] == "quit":
                    break
                if cmd[0] != "runs" or len(cmd) != 3:
                    emit({"error": "unknown command: " + line.strip()})
                    continue
                n, truth = int(cmd[1]), cmd[2] == "truth"
                c0 = time.process_time()
                runs = [run_once(driver, args.url, args.poll_ms / 1e3, truth) for _ in range(n)]
                emit({"runs": runs, "process_cpu_ms": (time.process_time() - c0) * 1e3})
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
