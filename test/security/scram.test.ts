/**
 * SCRAM against RFC 7677's SCRAM-SHA-256 example exchange, and ssl.principal.mapping.rules
 * parsing and mapping (Kafka's SslPrincipalMapper semantics).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentialFromSaltedPassword, passwordMatches, saltedPassword, ScramError, ScramServer } from '../../src/protocol/scram.js';
import { mapDistinguishedName, parsePrincipalMappingRules } from '../../src/broker/security/tls.js';
import { ConfigError } from '../../src/broker/config.js';

const RFC_SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
const RFC_SERVER_NONCE = 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';

test('RFC 7677 example: the server answers the exact server-first and server-final messages', async () => {
  const cred = credentialFromSaltedPassword('SCRAM-SHA-256', await saltedPassword('SCRAM-SHA-256', 'pencil', RFC_SALT, 4096), RFC_SALT, 4096);
  const server = new ScramServer('SCRAM-SHA-256');
  assert.equal(server.parseFirst(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO')), 'user');
  (server as unknown as { nonce: string }).nonce = RFC_SERVER_NONCE; // the RFC's server nonce instead of a random one
  assert.equal(server.serverFirstMessage(cred).toString(), `r=${RFC_SERVER_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`);
  const final = server.final(Buffer.from(`c=biws,r=${RFC_SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`));
  assert.equal(final.toString(), 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  assert.equal(await passwordMatches('SCRAM-SHA-256', 'pencil', cred), true);
  assert.equal(await passwordMatches('SCRAM-SHA-256', 'pencil2', cred), false);
});

test('a wrong proof, a changed nonce or channel binding, and malformed messages are refused', async () => {
  const cred = credentialFromSaltedPassword('SCRAM-SHA-256', await saltedPassword('SCRAM-SHA-256', 'pencil', RFC_SALT, 4096), RFC_SALT, 4096);
  const fresh = (): ScramServer => {
    const s = new ScramServer('SCRAM-SHA-256');
    s.parseFirst(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    (s as unknown as { nonce: string }).nonce = RFC_SERVER_NONCE;
    s.serverFirstMessage(cred);
    return s;
  };
  assert.throws(() => fresh().final(Buffer.from(`c=biws,r=${RFC_SERVER_NONCE},p=AAAAZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`)), ScramError);
  assert.throws(() => fresh().final(Buffer.from(`c=biws,r=other,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`)), /nonce/);
  assert.throws(() => fresh().final(Buffer.from(`c=eSws,r=${RFC_SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`)), /channel binding/);
  assert.throws(() => fresh().final(Buffer.from('garbage')), ScramError);
  for (const bad of ['', 'n=user,r=x', 'p=tls-unique,,n=user,r=x', 'n,,r=x', 'n,,n=,r=x', 'n,a=bob,n=user,r=x', 'n,,n=us=er,r=x']) {
    assert.throws(() => new ScramServer('SCRAM-SHA-256').parseFirst(Buffer.from(bad)), ScramError, bad);
  }
  assert.equal(new ScramServer('SCRAM-SHA-256').parseFirst(Buffer.from('n,,n=a=2Cb=3Dc,r=x')), 'a,b=c');
});

test('ssl.principal.mapping.rules: RULE patterns with case changes, DEFAULT, first match wins, bad rules are ConfigErrors', () => {
  const rules = parsePrincipalMappingRules('RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U,DEFAULT');
  assert.equal(mapDistinguishedName('CN=kafka-broker,OU=ServiceUsers,O=Acme', rules), 'kafka-broker');
  assert.equal(mapDistinguishedName('CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US', rules), 'duke@javasoft');
  assert.equal(mapDistinguishedName('OU=x,cn=admin.1,O=y', rules), 'ADMIN.1');
  assert.equal(mapDistinguishedName('O=NoName', rules), 'O=NoName');
  assert.equal(mapDistinguishedName('O=NoName', parsePrincipalMappingRules('RULE:^CN=(.*)$/$1/')), null);
  assert.equal(mapDistinguishedName('CN=a/b', parsePrincipalMappingRules('RULE:^CN=a\\/(.*)$/x\\/$1/')), 'x/b');
  for (const bad of ['RULE:^CN=(.*$/$1/', 'NOPE', 'DEFAULT DEFAULT', 'RULE:x/y']) assert.throws(() => parsePrincipalMappingRules(bad), ConfigError, bad);
});
