#!/usr/bin/env node
// Compiles MedsealRegistry.sol with the pinned solcjs (package.json / package-lock.json)
// through solc's standard-JSON API and writes the deterministic artifact
// (ABI + creation bytecode + runtime bytecode, no CBOR metadata) to the path given as the
// first argument (default: MedsealRegistry.json next to this script).
//
// Usage: node build.js [OUTPUT.json]
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const here = __dirname;
const sourceName = 'MedsealRegistry.sol';
const contractName = 'MedsealRegistry';
const output = path.resolve(process.argv[2] || path.join(here, 'MedsealRegistry.json'));

const settings = {
  evmVersion: 'prague',
  viaIR: true,
  optimizer: { enabled: true, runs: 10000 },
  // No CBOR metadata (and so no metadata hash) is appended: the bytecode depends only on the
  // source text and these settings, so the artifact is reproducible byte for byte.
  metadata: { appendCBOR: false, bytecodeHash: 'none' },
  outputSelection: {
    [sourceName]: { [contractName]: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
  },
};

const input = {
  language: 'Solidity',
  sources: { [sourceName]: { content: fs.readFileSync(path.join(here, sourceName), 'utf8') } },
  settings,
};

const result = JSON.parse(solc.compile(JSON.stringify(input)));
const diagnostics = result.errors || [];
for (const d of diagnostics) {
  process.stderr.write(`${d.formattedMessage || d.message}\n`);
}
if (diagnostics.some((d) => d.severity === 'error')) {
  process.stderr.write('build.js: compilation failed\n');
  process.exit(1);
}
if (diagnostics.length > 0) {
  process.stderr.write('build.js: refusing to write an artifact while the compiler reports warnings\n');
  process.exit(1);
}

const compiled = result.contracts[sourceName][contractName];
const artifact = {
  contractName,
  sourceName,
  compiler: { name: 'solc', version: solc.version(), settings: { evmVersion: settings.evmVersion, viaIR: settings.viaIR, optimizer: settings.optimizer, metadata: settings.metadata } },
  abi: compiled.abi,
  bytecode: `0x${compiled.evm.bytecode.object}`,
  deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
};

fs.writeFileSync(output, `${JSON.stringify(artifact, null, 2)}\n`);
process.stdout.write(`build.js: wrote ${output} (${compiled.evm.deployedBytecode.object.length / 2} bytes runtime code, solc ${solc.version()})\n`);
