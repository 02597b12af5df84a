#!/usr/bin/env python3
"""Drives `daglo serve`'s page in headless Chromium through WebDriver (selenium and Debian's
chromium-driver), as an operator would:

    drive_page.py BASE_URL API_KEY FILE SCREENSHOT.png

Checks that the page shows nothing before it is given a key, connects with the key, uploads
FILE, watches the job's progress bar until it reads 100 %, opens the job and reads its
transcript, compares it with the API's, and saves a screenshot. Prints one JSON line: the job,
the progress values seen, the transcript's length.
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
            "return [row.dataset.state, Number(row.querySelector('.bar').dataset.progress)];", job)
        value = int(value)
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
    driver.save_screenshot(screenshot)
    print(json.dumps({"job": job, "progress_seen": seen, "transcript_chars": len(transcript)}))
finally:
    driver.quit()
