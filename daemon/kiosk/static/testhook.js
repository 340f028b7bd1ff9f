// Test hook (served only with kiosk.Options.TestHooks; never in production).
//
// Reads steps from the URL fragment, #script=juminhyo,0000,1234,confirm,
// and performs each in order, as soon as the screen allows it, by
// dispatching click events on the page's own buttons:
//
//	juminhyo, inkan, kazei, …  the service button on the menu
//	dddd                        four PIN pad keys, then 確定, at the next PIN prompt
//	confirm, reenter            the button of the last-try dialog
//	cancel                      the Cancel button of the screen shown
//
// document.documentElement.dataset.hookDone counts the steps performed.
'use strict';
(() => {
  const m = /(?:^#|&)script=([^&]*)/.exec(location.hash);
  if (!m) return;
  const steps = decodeURIComponent(m[1]).split(',').filter((s) => s !== '');
  const root = document.documentElement;
  let next = 0;
  root.dataset.hookDone = '0';

  const click = (el) => el.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, view: window }));
  const usable = (el) => !!el && !el.disabled && el.getClientRects().length > 0;

  function perform(step) {
    const screen = document.body.dataset.screen;
    if (/^[0-9]{4}$/.test(step)) {
      if (screen !== 'pin-required' || document.body.dataset.pinReady !== '1') return false;
      for (const d of step) click(document.querySelector(`#pad [data-key="${d}"]`));
      click(document.querySelector('#pad [data-key="ok"]'));
      return true;
    }
    if (step === 'confirm' || step === 'reenter') {
      const dlg = document.getElementById('last-try-dialog');
      const b = dlg.querySelector(`[data-dialog="${step}"]`);
      if (!dlg.open || !usable(b)) return false;
      click(b);
      return true;
    }
    if (step === 'cancel') {
      const b = document.querySelector('.screen:not([hidden]) [data-action="cancel"]');
      if (!usable(b)) return false;
      click(b);
      return true;
    }
    if (screen !== 'home') return false;
    const b = document.querySelector(`[data-service="${CSS.escape(step)}"]`);
    if (!usable(b)) return false;
    click(b);
    return true;
  }

  function run() {
    while (next < steps.length && perform(steps[next])) {
      next++;
      root.dataset.hookDone = String(next);
    }
  }

  new MutationObserver(run).observe(document.body, { attributes: true, childList: true, subtree: true });
  run();
})();
