// localStorage, which can be full, disabled or throw in a private window: then the page works the same and
// only forgets on reload.

export function load(key) {
  try {
    return window.localStorage.getItem(key);
  } catch (err) {
    return null;
  }
}

// A null value removes the key.
export function save(key, value) {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch (err) {
    /* not persisted; the in-memory copy still works until the page closes */
  }
}
