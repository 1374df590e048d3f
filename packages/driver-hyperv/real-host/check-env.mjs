// Guard of `pnpm test:hyperv-real`: refuses clearly unless a real Hyper-V host is named in the
// environment. That command runs the driver's conformance tests against a REAL Windows host with
// Hyper-V and OpenSSH; `pnpm test` never runs it (the project's machines have no Hyper-V).
const required = {
  NOVA_LFS_HYPERV_HOST: 'host name or address of the Windows Server with Hyper-V and OpenSSH Server',
  NOVA_LFS_HYPERV_USER: 'an account in Administrators or Hyper-V Administrators',
  NOVA_LFS_HYPERV_KEY: 'path of the private key file (key-only login; passwords are not supported)',
  NOVA_LFS_HYPERV_HOST_FINGERPRINT: "the host key's fingerprint, as `ssh-keygen -lf` prints it (SHA256:...)",
};
const missing = Object.entries(required).filter(([k]) => !process.env[k]);
if (missing.length > 0) {
  console.error('test:hyperv-real refuses to run: it needs a real Hyper-V host, and these are not set:');
  for (const [k, what] of missing) console.error(`  ${k}: ${what}`);
  console.error(
    'Optional: NOVA_LFS_HYPERV_PORT (22), NOVA_LFS_HYPERV_DISK_ROOT (C:\\NovaLFS\\instances),\n' +
      '  NOVA_LFS_HYPERV_IMAGE_ROOT (C:\\NovaLFS\\images), NOVA_LFS_HYPERV_IMAGE (a raw disk image; default: a blank 4 MiB disk).\n' +
      'The tests create and remove VMs named nova-<uuid> on that host. See packages/driver-hyperv/README.md.',
  );
  process.exit(2);
}
