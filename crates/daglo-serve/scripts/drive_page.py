#!/usr/bin/env python3
"""Drives `daglo serve`'s page in headless Chromium through WebDriver (selenium and Debian's
chromium-driver), as an operator would:

    drive_page.py BASE_URL API_KEY FILE SCREENSHOT.png

Checks that the page shows nothing before it is given a key, connects with the key, uploads
FILE, watches the job's progress bar until it reads 100 %, opens the job and reads its
transcript, compares it with the API's, and saves a screenshot at 1280 px. Then: a job Daglo
fails is red with its reason (row, detail, transcript); Replay and Delete say what they did;
times name their zone; at 420 px nothing scrolls sideways and the filter is whole (a second
screenshot, SCREENSHOT with `-420` before `.png`); with the network cut the page says the
service does not answer, and recovers by itself when it comes back. Prints one JSON line: the
job, the progress values seen, the transcript's length, the states checked.
"""
import json
import os
import shutil
import sys
import time
import urllib.request

os.environ.setdefault("SE_OFFLINE", "true")  # never fetch a browser or a driver

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, key, upload, screenshot = sys.argv[1:5]
browser = shutil.which("chromium") or shutil.which("chromium-browser")
driver_path = shutil.which("chromedriver")
if not browser or not driver_path:
    sys.exit("chromium and chromedriver are needed (Debian: chromium chromium-driver)")

options = Options()
options.binary_location = browser
for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1500", "--no-first-run", "--disable-extensions"):
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
driver.set_page_load_timeout(60)
wait = WebDriverWait(driver, 90, poll_frequency=0.1)


def shown(element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


try:
    driver.get(base + "/")
    wait.until(lambda d: shown("locked"))
    assert not shown("workspace"), "no data before a key"
    assert not driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr"), "no jobs before a key"

    driver.find_element(By.ID, "api-key").send_keys(key)
    driver.find_element(By.ID, "connect-button").click()
    wait.until(lambda d: shown("workspace"))

    driver.find_element(By.ID, "file").send_keys(os.path.abspath(upload))
    driver.find_element(By.ID, "job-labels").send_keys("source=browser")
    driver.find_element(By.ID, "upload-button").click()
    job = wait.until(lambda d: d.execute_script(
        "const row = document.querySelector('#jobs tbody tr[data-job-id]');"
        "return row ? row.dataset.jobId : null"))

    seen = []
    deadline = time.monotonic() + 90
    while True:
        # Read in one script: the row is redrawn on every event.
        state, value = driver.execute_script(
            "const row = document.querySelector(`tr[data-job-id='${arguments[0]}']`);"
            "return row ? [row.dataset.state, Number(row.querySelector('.bar').dataset.progress)] : [null, -1];",
            job)
        value = int(value)
        if value < 0:  # the list is being redrawn
            time.sleep(0.05)
            continue
        if not seen or seen[-1] != value:
            seen.append(value)
        if value == 100 and state == "finished":
            break
        if time.monotonic() > deadline:
            sys.exit(f"the bar never reached 100 %: saw {seen}, state {state}")
        time.sleep(0.1)

    driver.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{job}"]').click()
    transcript = wait.until(
        lambda d: (lambda t: t if t and not t.startswith("(") else None)(
            d.execute_script("return document.getElementById('transcript').textContent")))
    request = urllib.request.Request(f"{base}/v1/jobs/{job}/transcript",
                                     headers={"Authorization": "Bearer " + key})
    expected = urllib.request.urlopen(request, timeout=30).read().decode("utf-8")
    if transcript.strip() != expected.strip():
        sys.exit(f"the page's transcript differs from the API's:\n{transcript!r}\n{expected!r}")
    # The job's callbacks and deliveries are listed in its detail.
    wait.until(lambda d: d.find_element(By.ID, "detail").is_displayed())
    os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
    checked = []

    def text_of(selector):
        return driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", selector)

    # Times name their zone (the browser's): the created column is not a bare UTC stamp.
    created = driver.execute_script(
        "return document.querySelector(`tr[data-job-id='${arguments[0]}'] td:last-child`).textContent", job)
    assert "Z" not in created and any(c.isalpha() for c in created), f"a time without its zone: {created!r}"
    checked.append("times with a zone")

    # Replay says what it did.
    driver.find_element(By.ID, "replay").click()
    wait.until(lambda d: text_of("#action-status").startswith("Replayed"))
    checked.append("replay says what it did")
    driver.save_screenshot(screenshot)

    # A job Daglo fails: red, with its reason, in the row, the detail and the transcript.
    request = urllib.request.Request(f"{base}/v1/jobs", method="POST",
                                     data=json.dumps({"url": "https://a.example/file-error.wav"}).encode(),
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    failed = json.loads(urllib.request.urlopen(request, timeout=30).read())["id"]
    deadline = time.monotonic() + 90
    while True:
        state = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{base}/v1/jobs/{failed}", headers={"Authorization": "Bearer " + key}), timeout=30).read())["state"]
        if state == "failed":
            break
        assert time.monotonic() < deadline, "the failing job never failed"
        time.sleep(0.1)
    driver.find_element(By.ID, "refresh").click()
    row = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-job-id="{failed}"]'))[0]
    assert "file_error" in row.text, f"the row shows no reason: {row.text!r}"
    assert driver.execute_script(
        "return document.querySelector(`tr[data-job-id='${arguments[0]}'] .bar`).classList.contains('failed')", failed)
    colour = driver.execute_script(
        "return getComputedStyle(document.querySelector(`tr[data-job-id='${arguments[0]}'] .bar > span`)).backgroundColor",
        failed)
    assert colour.replace(" ", "") == "rgb(214,69,69)", f"the failed bar is not red: {colour}"
    row.click()
    wait.until(lambda d: "file_error" in text_of("#detail-reason"))
    wait.until(lambda d: "failed" in text_of("#transcript") and "(no speech)" not in text_of("#transcript"))
    checked.append("a failed job is red with its reason")

    # Delete says what it did and the row goes.
    driver.find_element(By.ID, "delete").click()
    wait.until(lambda d: text_of("#upload-status").startswith("Deleted job"))
    assert not driver.find_elements(By.CSS_SELECTOR, f'tr[data-job-id="{failed}"]')
    checked.append("delete says what it did")

    # 420 px wide: nothing scrolls sideways, the filter is whole.
    driver.set_window_size(420, 1500)
    wait.until(lambda d: d.execute_script("return window.innerWidth <= 420"))
    wide, inner = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide <= inner, f"the page scrolls sideways at 420 px: {wide} > {inner}"
    right = driver.execute_script(
        "return document.getElementById('filter-label').getBoundingClientRect().right")
    assert right <= inner, f"the label filter is cut off: {right} > {inner}"
    narrow = screenshot[:-4] + "-420.png" if screenshot.endswith(".png") else screenshot + "-420.png"
    driver.save_screenshot(narrow)
    checked.append("420 px")
    driver.set_window_size(1280, 1500)

    # The service unreachable: said in words, and the page recovers by itself.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    driver.find_element(By.ID, "refresh").click()
    wait.until(lambda d: d.find_element(By.ID, "offline").is_displayed())
    assert "does not answer" in text_of("#offline"), text_of("#offline")
    assert "Failed to fetch" not in text_of("#error")
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    wait.until(lambda d: not d.find_element(By.ID, "offline").is_displayed())
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-job-id="{job}"]'))
    checked.append("offline said and recovered")
    print(json.dumps({"job": job, "progress_seen": seen, "transcript_chars": len(transcript),
                      "checked": checked}))
finally:
    driver.quit()
