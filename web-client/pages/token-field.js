/* global document, location, sessionStorage */
// The Token field of the gateway's own pages (the demo page and the dashboard).
// With auth on, the token is the MQTT password and the REST Bearer token; it is
// kept for this tab only (sessionStorage), under one name, so a token entered
// on one page serves the other too. Served at /pages/token-field.js.
const TOKEN_KEY = 'rtw-token'

/** Fills #token with the kept token, keeps a new one when #token-form is submitted (then reloads), and returns the kept one ('' for none). */
export function tokenField () {
  const input = document.getElementById('token')
  const token = sessionStorage.getItem(TOKEN_KEY) ?? ''
  input.value = token
  document.getElementById('token-form').addEventListener('submit', event => {
    event.preventDefault()
    const value = input.value.trim()
    if (value === '') sessionStorage.removeItem(TOKEN_KEY)
    else sessionStorage.setItem(TOKEN_KEY, value)
    location.reload()
  })
  return token
}
