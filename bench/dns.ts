// A loopback DNS server for bench P2A, in a process of its own (the bench blocks its own event loop
// while a delivery runs): the test's responder, serving SPF and DMARC for the senders' domain.
// Prints "127.0.0.1:PORT" once it listens; runs until killed.

import { startDns } from '../test/dns-server.js';

const dns = await startDns();
dns.txt('auth.example.net', 'v=spf1 ip4:192.0.2.10 -all');
dns.txt('_dmarc.auth.example.net', 'v=DMARC1; p=reject');
process.stdout.write(`${dns.address}\n`);
