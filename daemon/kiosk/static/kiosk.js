// kazasu kiosk screen. Drives kazasud's local API (same origin, /v1/...):
// reader list → service → transaction followed by its event stream (with a
// status poll while the stream is down) → PIN pad → result.
//
// The PIN: the digits live only in app.pin (an array), are shown as ●, are
// sent once in the body of POST .../pin and the array is overwritten before
// the request leaves. They are never written to the DOM, a URL, storage or
// any log.
'use strict';
(() => {
  // Service names come from the menu's buttons (the server renders them).
  const SERVICES = {};
  for (const b of document.querySelectorAll('[data-service]')) {
    const ja = b.querySelector('.ja');
    const en = b.querySelector('.en');
    SERVICES[b.dataset.service] = { ja: ja ? ja.textContent : b.dataset.service, en: en ? en.textContent : b.dataset.service };
  }
  const serviceName = (code) => (Object.hasOwn(SERVICES, code) ? SERVICES[code] : { ja: code, en: code });

  const TRY_AGAIN = { ja: 'もう一度最初からお試しください。', en: 'Please start again.' };
  const ASK_STAFF = { ja: '係員にお声がけください。', en: 'Please ask the staff for help.' };
  const ASK_OFFICE = { ja: '市区町村の窓口にお問い合わせください。', en: 'Please contact your municipal office.' };
  const USE_JPKI = { ja: 'マイナンバーカード、またはスマホ用電子証明書を搭載したスマートフォンをお使いください。', en: 'Please use a My Number Card or a smartphone with the JPKI certificate.' };
  const READ_AGAIN = { ja: 'カードを置きなおして、もう一度最初からお試しください。', en: 'Place it on the reader again and start over.' };

  // Failure reasons (the engine's codes) → message and what to do.
  const REASONS = {
    pin_blocked: { ja: '暗証番号がロックされています', en: 'Your PIN is locked', more: { ja: '市区町村の窓口でPINの初期化が必要です。', en: 'It must be reset at your municipal office.' } },
    card_removed: { ja: 'カードまたはスマートフォンが離れました', en: 'The card or phone left the reader', more: TRY_AGAIN },
    tap_timeout: { ja: 'カードまたはスマートフォンがかざされませんでした', en: 'No card or phone was held to the reader', more: TRY_AGAIN },
    pin_timeout: { ja: '暗証番号の入力時間を過ぎました', en: 'The time for entering the PIN ran out', more: TRY_AGAIN },
    cancelled: { ja: '中止しました', en: 'Cancelled' },
    service_unavailable: { ja: '発行サービスに接続できません', en: 'The issuance service cannot be reached', more: { ja: 'しばらくしてからお試しいただくか、係員にお声がけください。', en: 'Please try again later or ask the staff.' } },
    cert_expired: { ja: '電子証明書の有効期限が切れています', en: 'Your electronic certificate has expired', more: { ja: '市区町村の窓口で更新してください。', en: 'Please renew it at your municipal office.' } },
    cert_revoked: { ja: '電子証明書が失効しています', en: 'Your electronic certificate has been revoked', more: ASK_OFFICE },
    cert_not_yet_valid: { ja: '電子証明書がまだ有効になっていません', en: 'Your electronic certificate is not valid yet', more: ASK_OFFICE },
    cert_clock_unsynchronised: { ja: '現在、電子証明書を確認できません', en: 'Certificates cannot be checked right now', more: ASK_STAFF },
    cert_crl_stale: { ja: '現在、電子証明書を確認できません', en: 'Certificates cannot be checked right now', more: ASK_STAFF },
    cert_revocation_unknown: { ja: '現在、電子証明書を確認できません', en: 'Certificates cannot be checked right now', more: ASK_STAFF },
    not_jpki: { ja: 'このカードは使えません', en: 'This card cannot be used', more: USE_JPKI },
    unsupported_token: { ja: '対応していないカードまたは端末です', en: 'This card or device is not supported', more: USE_JPKI },
    reader_gone: { ja: 'カードリーダーが使えません', en: 'The card reader is not working', more: ASK_STAFF },
    reader_offline: { ja: 'カードリーダーが使えません', en: 'The card reader is not working', more: ASK_STAFF },
    card_timeout: { ja: 'カードを読み取れませんでした', en: 'The card could not be read', more: READ_AGAIN },
    transmission_error: { ja: 'カードを読み取れませんでした', en: 'The card could not be read', more: READ_AGAIN },
    protocol_error: { ja: 'カードを読み取れませんでした', en: 'The card could not be read', more: READ_AGAIN },
    token_malformed: { ja: 'カードを読み取れませんでした', en: 'The card could not be read', more: READ_AGAIN },
    not_supported: { ja: 'カードを読み取れませんでした', en: 'The card could not be read', more: READ_AGAIN },
    timeout: { ja: '時間がかかりすぎたため中止しました', en: 'Stopped because it took too long', more: TRY_AGAIN },
    connection_lost: { ja: '端末との通信が途切れました', en: 'Lost contact with the terminal', more: ASK_STAFF },
  };
  const CERT_OTHER = { ja: '電子証明書を確認できませんでした', en: 'Your electronic certificate could not be verified', more: ASK_OFFICE };
  const REFUSED = { ja: '申請を受け付けられませんでした', en: 'Your request could not be accepted', more: ASK_STAFF };
  const UNKNOWN = { ja: 'エラーが発生しました', en: 'An error occurred', more: ASK_STAFF };

  function reasonText(code) {
    if (Object.hasOwn(REASONS, code)) return REASONS[code];
    if (code.startsWith('cert_')) return CERT_OTHER;
    if (code.startsWith('refused_cert_')) return reasonText(code.slice('refused_'.length)); // the service's own check
    if (code.startsWith('refused_')) return REFUSED;
    return UNKNOWN;
  }

  // Errors of the API's answers shown on the menu.
  const START_ERRORS = {
    reader_busy: { ja: 'カードリーダーは使用中です。しばらくお待ちください。', en: 'The card reader is in use. Please wait a moment.' },
    reader_offline: { ja: 'カードリーダーの準備ができていません。係員にお声がけください。', en: 'The card reader is not ready. Please ask the staff.' },
    unknown_reader: { ja: 'カードリーダーが見つかりません。係員にお声がけください。', en: 'The card reader was not found. Please ask the staff.' },
    unknown_service: { ja: 'この証明書はこの端末では取り扱っていません。', en: 'This certificate is not available at this terminal.' },
    busy: { ja: '混み合っています。しばらくしてからお試しください。', en: 'The terminal is busy. Please try again shortly.' },
  };
  const NET_ERROR = { ja: '端末と通信できませんでした。もう一度お試しください。', en: 'Could not reach the terminal. Please try again.' };
  const NO_READER = { ja: 'カードリーダーの準備ができていません。しばらくお待ちください。', en: 'The card reader is not ready yet. Please wait.' };

  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const resetMS = Number(body.dataset.resetMs);
  const dialog = $('last-try-dialog');

  const app = {
    readers: [],
    reader: '', // chosen reader
    resumed: false, // looked for a transaction to resume (page reloaded mid-way)
    starting: false,
    tx: null, // latest snapshot of the transaction on screen
    txKey: null, // its updated_at as nanoseconds (BigInt), for ordering
    es: null,
    reopenTimer: 0,
    pollTimer: 0,
    resetTimer: 0,
    readersTimer: 0,
    screen: 'loading',
    pin: [], // the digits typed: never in the DOM
    promptKey: null, // txKey of the pin-required prompt open for input
    submitting: false, // a PIN was sent for promptKey
    lastTries: null, // tries_left when the PIN was sent
    wrongPIN: false,
    pinMessage: null,
    cancelling: false,
    resultSaid: '', // the result last announced
  };

  // ---- API ----

  async function call(method, path, payload) {
    const init = {
      method,
      headers: { Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'same-origin',
      redirect: 'error',
      signal: AbortSignal.timeout(15000), // a hung request counts as a network error
    };
    if (payload !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = payload;
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, code: 'network', data: null };
    }
    let data = null;
    try {
      data = await r.json();
    } catch (e) {
      data = null;
    }
    const code = !r.ok && data && data.error && typeof data.error.code === 'string' ? data.error.code : '';
    return { ok: r.ok, status: r.status, code, data };
  }

  const txPath = (id) => '/v1/transactions/' + encodeURIComponent(id);

  // updated_at (RFC 3339 with nanoseconds) → BigInt nanoseconds, or null.
  function timeKey(s) {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s || '');
    if (!m) return null;
    const ms = Date.parse(m[1] + m[3]);
    if (Number.isNaN(ms)) return null;
    return BigInt(ms) * 1000000n + BigInt((m[2] || '').padEnd(9, '0'));
  }

  // ---- Readers and the menu ----

  async function loadReaders() {
    clearTimeout(app.readersTimer);
    const r = await call('GET', '/v1/readers');
    if (app.tx || app.starting) return; // a transaction began meanwhile
    if (r.ok && r.data && Array.isArray(r.data.readers)) {
      app.readers = r.data.readers;
      if (!app.resumed) {
        app.resumed = true;
        if (await resume()) return;
      }
      const cur = app.readers.find((x) => x.name === app.reader);
      if (!cur) {
        const ready = app.readers.find((x) => x.state === 'ready');
        app.reader = ready ? ready.name : app.readers.length ? app.readers[0].name : '';
      }
      if (app.screen === 'loading') show('home');
      renderHome(null);
    } else if (app.screen === 'home') {
      renderHome(NET_ERROR);
    }
    app.readersTimer = setTimeout(loadReaders, 3000);
  }

  // resume follows a transaction still running on a reader (the page was
  // reloaded in the middle of one).
  async function resume() {
    for (const rd of app.readers) {
      if (rd.state !== 'busy' || !rd.transaction_id) continue;
      const r = await call('GET', txPath(rd.transaction_id));
      if (r.ok && r.data && !r.data.final && !app.tx) {
        app.reader = rd.name;
        follow(r.data);
        return true;
      }
    }
    return false;
  }

  function readerLabel(rd) {
    switch (rd.state) {
      case 'ready': return { ja: '使用できます', en: 'Ready' };
      case 'busy': return { ja: '使用中', en: 'In use' };
      default: return { ja: '使用できません', en: 'Not available' };
    }
  }

  function renderHome(notice) {
    const list = $('reader-list');
    $('readers').hidden = app.readers.length < 2;
    list.replaceChildren(...app.readers.map((rd) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'reader';
      b.dataset.reader = rd.name;
      b.setAttribute('aria-pressed', String(rd.name === app.reader));
      const name = document.createElement('span');
      name.className = 'ja';
      name.textContent = rd.name;
      const st = document.createElement('span');
      st.className = 'en';
      const l = readerLabel(rd);
      st.textContent = l.ja + ' ' + l.en;
      b.append(name, st);
      return b;
    }));
    const cur = app.readers.find((x) => x.name === app.reader);
    const ready = !!cur && cur.state === 'ready' && !app.starting;
    for (const b of document.querySelectorAll('[data-service]')) b.disabled = !ready;
    if (!notice && (!cur || cur.state !== 'ready')) {
      notice = cur && cur.state === 'busy' ? START_ERRORS.reader_busy : NO_READER;
    }
    setNotice(notice);
  }

  function setNotice(n) {
    $('home-notice').hidden = !n;
    $('home-notice-ja').textContent = n ? n.ja : '';
    $('home-notice-en').textContent = n ? n.en : '';
  }

  async function startService(service) {
    if (app.starting || app.tx || !app.reader) return;
    app.starting = true;
    renderHome(null);
    show('starting');
    const r = await call('POST', '/v1/transactions', JSON.stringify({ reader: app.reader, service }));
    app.starting = false;
    if (r.ok && r.data && typeof r.data.id === 'string') {
      follow(r.data);
      return;
    }
    show('home');
    renderHome(r.status === 0 ? NET_ERROR : START_ERRORS[r.code] || NET_ERROR);
    app.readersTimer = setTimeout(loadReaders, 3000);
  }

  // ---- Following a transaction ----

  function follow(st) {
    clearTimeout(app.readersTimer);
    stopFollowing();
    app.tx = null;
    app.txKey = null;
    app.promptKey = null;
    app.submitting = false;
    app.lastTries = null;
    app.wrongPIN = false;
    app.pinMessage = null;
    app.cancelling = false;
    clearPIN();
    apply(st);
    if (app.tx && !app.tx.final) {
      openStream(st.id);
      app.pollTimer = setInterval(pollIfNeeded, 2000);
    }
  }

  function stopFollowing() {
    if (app.es) app.es.close();
    app.es = null;
    clearTimeout(app.reopenTimer);
    clearInterval(app.pollTimer);
  }

  // openStream follows the transaction's event stream. EventSource
  // reconnects by itself after a dropped connection (the server asks for
  // 2 s); when it gives up (an HTTP error) the stream is reopened here. While
  // the stream is not open the status is polled instead.
  function openStream(id) {
    const es = new EventSource(txPath(id) + '/events');
    app.es = es;
    es.addEventListener('transaction', (e) => {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (ev && ev.transaction) apply(ev.transaction);
    });
    es.addEventListener('error', () => {
      if (app.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        app.es = null;
        clearTimeout(app.reopenTimer);
        app.reopenTimer = setTimeout(() => {
          if (app.tx && app.tx.id === id && !app.tx.final && !app.es) openStream(id);
        }, 2000);
      }
      poll();
    });
  }

  function pollIfNeeded() {
    if (!app.es || app.es.readyState !== EventSource.OPEN) poll();
  }

  async function poll() {
    const tx = app.tx;
    if (!tx || tx.final) return;
    const r = await call('GET', txPath(tx.id));
    if (app.tx !== tx && (!app.tx || app.tx.id !== tx.id)) return;
    if (r.ok && r.data) {
      apply(r.data);
    } else if (r.code === 'unknown_transaction') {
      // The daemon no longer knows it (restarted): end it on screen,
      // keeping an issued ticket.
      const end = app.tx.ticket ? { final: true } : { state: 'failed', reason: 'connection_lost', final: true };
      apply(Object.assign({}, app.tx, end, { updated_at: '' }), true);
    }
  }

  // apply shows a snapshot unless it is older than the one on screen.
  function apply(st, force) {
    if (!st || typeof st.id !== 'string' || typeof st.state !== 'string') return;
    const cur = app.tx;
    if (cur && st.id !== cur.id) return;
    if (cur && cur.final) return;
    const key = timeKey(st.updated_at);
    if (!force && cur && key !== null && app.txKey !== null && key < app.txKey) return;
    app.tx = st;
    if (key !== null) app.txKey = key;
    if (st.state === 'pin-required') {
      if (app.txKey !== app.promptKey) {
        // A new prompt: after a PIN was sent it means the PIN was wrong.
        app.wrongPIN = app.lastTries !== null && typeof st.tries_left === 'number' && st.tries_left < app.lastTries;
        app.promptKey = app.txKey;
        app.submitting = false;
        app.pinMessage = null;
        clearPIN();
      }
    } else {
      // The prompt is gone (e.g. the card was removed): so are the digits.
      clearPIN();
      if (dialog.open) dialog.close();
    }
    if (st.final) {
      stopFollowing();
      clearTimeout(app.resetTimer);
      if (resetMS > 0) app.resetTimer = setTimeout(goHome, resetMS);
    }
    render();
  }

  function goHome() {
    stopFollowing();
    clearTimeout(app.resetTimer);
    if (dialog.open) dialog.close();
    app.tx = null;
    app.txKey = null;
    app.promptKey = null;
    app.submitting = false;
    clearPIN();
    $('current-service').hidden = true;
    for (const k of ['state', 'final', 'triesLeft', 'reason', 'pinReady']) delete body.dataset[k];
    show('home');
    renderHome(null);
    loadReaders();
  }

  async function cancel() {
    const tx = app.tx;
    if (!tx || tx.final || app.cancelling) return;
    app.cancelling = true;
    render();
    const r = await call('POST', txPath(tx.id) + '/cancel');
    app.cancelling = false;
    if (r.ok && r.data) apply(r.data);
    poll();
    render();
  }

  // ---- PIN ----

  function clearPIN() {
    app.pin.fill('0');
    app.pin.length = 0;
  }

  function pinOpen() {
    return app.screen === 'pin-required' && !app.submitting && !dialog.open && !app.cancelling;
  }

  function press(k) {
    if (!pinOpen()) return;
    if (/^[0-9]$/.test(k)) {
      if (app.pin.length < 4) app.pin.push(k);
    } else if (k === 'back') {
      if (app.pin.length) app.pin[app.pin.length - 1] = '0';
      app.pin.pop();
    } else if (k === 'ok') {
      if (app.pin.length === 4) submitPIN(false);
      return;
    }
    renderPIN();
  }

  async function submitPIN(confirmed) {
    const tx = app.tx;
    if (!tx || tx.state !== 'pin-required' || app.pin.length !== 4) return;
    if (tx.last_try && !confirmed) {
      dialog.showModal();
      renderPIN();
      return;
    }
    app.submitting = true;
    app.pinMessage = null;
    app.lastTries = typeof tx.tries_left === 'number' ? tx.tries_left : null;
    renderPIN();
    const base = txPath(tx.id);
    if (tx.last_try) {
      const c = await call('POST', base + '/confirm-last-try');
      if (!c.ok) {
        clearPIN();
        pinFailed(c);
        return;
      }
      if (app.pin.length !== 4) return; // the prompt ended meanwhile
    }
    const payload = '{"pin":"' + app.pin.join('') + '"}';
    clearPIN();
    const r = await call('POST', base + '/pin', payload);
    if (r.ok) {
      if (r.data) apply(r.data);
      return;
    }
    pinFailed(r);
  }

  // pinFailed reopens the pad after a PIN that did not reach the engine.
  function pinFailed(r) {
    if (!app.tx || app.tx.state !== 'pin-required') return;
    app.submitting = false;
    app.lastTries = null;
    app.pinMessage = r.status === 0 ? NET_ERROR : { ja: '送信できませんでした。もう一度入力してください。', en: 'The PIN could not be sent. Please enter it again.' };
    if (r.code === 'transaction_ended' || r.code === 'wrong_state') poll();
    render();
  }

  // ---- Rendering ----

  function show(name) {
    if (app.screen === name) return;
    app.screen = name;
    body.dataset.screen = name;
    let focus = null;
    for (const s of document.querySelectorAll('.screen')) {
      const on = s.dataset.for === name;
      s.hidden = !on;
      if (on) focus = s;
    }
    if (focus) {
      const h = [...focus.querySelectorAll('h1')].find((x) => x.offsetParent !== null);
      if (h) h.focus({ preventScroll: true });
    }
  }

  function screenOf(state) {
    switch (state) {
      case 'reading':
      case 'verifying':
      case 'relaying':
        return 'progress';
      case 'done':
      case 'failed':
      case 'remove-card':
        return 'result';
      default:
        return state;
    }
  }

  function say(ja, en) {
    $('live').textContent = ja + ' ' + en;
  }

  function render() {
    const tx = app.tx;
    if (!tx) return;
    body.dataset.state = tx.state;
    body.dataset.final = tx.final ? '1' : '0';
    const svc = serviceName(tx.service);
    $('current-service').hidden = false;
    $('current-service-ja').textContent = svc.ja;
    $('current-service-en').textContent = svc.en;
    const before = app.screen;
    const name = screenOf(tx.state);
    if (name === 'progress') {
      for (const el of document.querySelectorAll('#screen-progress [data-when]')) el.hidden = el.dataset.when !== tx.state;
      const order = ['reading', 'pin', 'verifying', 'relaying'];
      const at = order.indexOf(tx.state);
      for (const li of document.querySelectorAll('#screen-progress [data-step]')) {
        const i = order.indexOf(li.dataset.step);
        li.className = i < at ? 'done' : i === at ? 'now' : '';
        if (i === at) li.setAttribute('aria-current', 'step');
        else li.removeAttribute('aria-current');
      }
      // iPhones have no PIN step.
      document.querySelector('#screen-progress [data-step="pin"]').hidden = tx.token_type === 'iphone';
    }
    for (const b of document.querySelectorAll('[data-action="cancel"]')) b.disabled = app.cancelling || tx.final;
    show(name);
    if (name === 'pin-required') renderPIN();
    else body.dataset.pinReady = '0';
    if (name === 'result') renderResult(tx);
    if (before !== app.screen || name === 'progress') announce(tx);
  }

  function announce(tx) {
    switch (tx.state) {
      case 'waiting-for-tap': say('カードまたはスマートフォンをかざしてください。', 'Hold your card or phone to the reader.'); break;
      case 'arm-your-phone': say('iPhoneで認証してから、もう一度かざしてください。', 'Confirm on your iPhone, then hold it to the reader again.'); break;
      case 'reading': say('読み取っています。', 'Reading.'); break;
      case 'pin-required': {
        const n = typeof tx.tries_left === 'number' ? tx.tries_left : null;
        const ja = (app.wrongPIN ? '暗証番号が正しくありません。' : '') + '暗証番号を入力してください。' + (n === null ? '' : `あと${n}回入力できます。`) + (tx.last_try ? '次が最後の入力です。' : '');
        const en = (app.wrongPIN ? 'The PIN is not correct. ' : '') + 'Enter your PIN.' + (n === null ? '' : ` ${n} ${n === 1 ? 'try' : 'tries'} left.`) + (tx.last_try ? ' This is your last try.' : '');
        say(ja, en);
        break;
      }
      case 'verifying': say('確認しています。', 'Checking.'); break;
      case 'relaying': say('証明書を申請しています。', 'Requesting your certificate.'); break;
      default: break;
    }
  }

  function renderPIN() {
    const tx = app.tx;
    if (!tx) return;
    const n = app.pin.length;
    const dots = document.querySelectorAll('#pin-display .dot');
    dots.forEach((d, i) => d.classList.toggle('filled', i < n));
    $('pin-display').setAttribute('aria-label', `4桁中${n}桁入力済み ${n} of 4 digits entered`);
    const tries = typeof tx.tries_left === 'number' ? tx.tries_left : null;
    body.dataset.triesLeft = tries === null ? '' : String(tries);
    $('tries').hidden = tries === null;
    $('tries').classList.toggle('warn', !!tx.last_try);
    $('tries-ja').textContent = tries === null ? '' : `あと${tries}回入力できます`;
    $('tries-en').textContent = tries === null ? '' : `${tries} ${tries === 1 ? 'try' : 'tries'} left`;
    $('last-try-banner').hidden = !tx.last_try;
    let msg = app.pinMessage;
    if (!msg && app.wrongPIN) msg = { ja: '暗証番号が正しくありません', en: 'The PIN is not correct' };
    $('pin-error').hidden = !msg;
    $('pin-error-ja').textContent = msg ? msg.ja : '';
    $('pin-error-en').textContent = msg ? msg.en : '';
    const open = pinOpen();
    for (const k of document.querySelectorAll('#pad .key')) {
      k.disabled = !open || (k.dataset.key === 'ok' ? n !== 4 : k.dataset.key === 'back' ? n === 0 : n === 4);
    }
    body.dataset.pinReady = open && n === 0 ? '1' : '0';
  }

  function renderResult(tx) {
    const ok = tx.state === 'done' || (tx.state === 'remove-card' && !!tx.ticket && !tx.reason);
    $('result-ok').hidden = !ok;
    $('result-ng').hidden = ok;
    if (ok) {
      const svc = serviceName(tx.service);
      $('result-service-ja').textContent = svc.ja;
      $('result-service-en').textContent = svc.en;
      $('ticket').textContent = tx.ticket || '';
    } else {
      const code = tx.reason || 'internal_error';
      const t = reasonText(code);
      $('reason-ja').textContent = t.ja;
      $('reason-en').textContent = t.en;
      $('reason-more').hidden = !t.more;
      $('reason-more-ja').textContent = t.more ? t.more.ja : '';
      $('reason-more-en').textContent = t.more ? t.more.en : '';
      $('reason-code').textContent = code;
    }
    body.dataset.reason = ok ? '' : tx.reason || '';
    $('remove-card').hidden = !(tx.state === 'remove-card' && !tx.final);
    $('again').hidden = !tx.final;
    const key = tx.state + (tx.final ? '/final' : '');
    if (app.resultSaid !== tx.id + key) {
      app.resultSaid = tx.id + key;
      const parts = ok ? ['受け付けました。受付番号 ' + (tx.ticket || ''), 'Accepted. Ticket ' + (tx.ticket || '')] : [$('reason-ja').textContent, $('reason-en').textContent];
      if (!$('remove-card').hidden) parts.push('カードをお取りください。', 'Please take your card.');
      say(parts.join(' '), '');
      const h = document.querySelector('#screen-result .result:not([hidden]) h1');
      if (h && app.screen === 'result') h.focus({ preventScroll: true });
    }
  }

  // ---- Events ----

  document.addEventListener('click', (e) => {
    const t = e.target instanceof Element ? e.target.closest('button') : null;
    if (!t || t.disabled) return;
    if (t.dataset.service) startService(t.dataset.service);
    else if (t.dataset.reader) {
      app.reader = t.dataset.reader;
      renderHome(null);
    } else if (t.dataset.key) press(t.dataset.key);
    else if (t.dataset.action === 'cancel') cancel();
    else if (t.dataset.action === 'home') goHome();
    else if (t.dataset.dialog === 'confirm') {
      dialog.close();
      submitPIN(true);
    } else if (t.dataset.dialog === 'reenter') {
      dialog.close();
      clearPIN();
      renderPIN();
    }
  });

  dialog.addEventListener('cancel', () => clearPIN()); // Escape: re-enter
  dialog.addEventListener('close', () => renderPIN());

  // A hardware keypad or keyboard works like the on-screen pad.
  document.addEventListener('keydown', (e) => {
    if (app.screen !== 'pin-required' || dialog.open) return;
    if (/^[0-9]$/.test(e.key)) press(e.key);
    else if (e.key === 'Backspace') press('back');
    else if (e.key === 'Enter') press('ok');
    else return;
    e.preventDefault();
  });

  loadReaders();
})();
