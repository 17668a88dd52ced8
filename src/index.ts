// Public library API of sftkit.
export { SftkitError, invalidParameterError, dataError, type SftkitErrorCode } from './errors.ts';
export { binding, readLibtorchRecord, type NativeBinding, type RuntimeInfo, type LibtorchRecord } from './native/binding.ts';
export { doctorReport, type DoctorReport } from './cli/doctor.ts';
